"""What Shepherd uses of Slack's and Linear's published contracts, carried in the project as fixtures.

- `slack/web_api.json`: Slack's Web API OpenAPI spec (swagger 2.0, 2021) cut down to the operations of
  the methods the Slack stand-in answers (every method Shepherd, Bolt and slack_sdk call through it),
  each operation whole, with the definitions they refer to.
- `linear/schema.graphql`: Linear's GraphQL schema cut down to the types and fields reachable from the
  documents Shepherd sends (`bot.adapters.linear.DOCUMENTS`): the root fields it calls with all their
  arguments, every input type those arguments take in full, and the output fields it selects.

Both are generated from the full published files by `scripts/contracts` (`trim.py` here) and keep their
MIT licences beside them. Where the full files are present, the stand-ins check against them instead:
`$SHEPHERD_SLACK_CONTRACT` and `$SHEPHERD_LINEAR_SCHEMA`, else `shared/contracts/` in the folder that
holds the repository; the tests then also prove the fixtures a faithful, up-to-date subset of them.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
SLACK_FIXTURE = HERE / "slack" / "web_api.json"
LINEAR_FIXTURE = HERE / "linear" / "schema.graphql"
BESIDE_REPOSITORY = HERE.parents[2].parent / "shared" / "contracts"
SLACK_VARIABLE = "SHEPHERD_SLACK_CONTRACT"
LINEAR_VARIABLE = "SHEPHERD_LINEAR_SCHEMA"


def full_slack_contract() -> Path | None:
    """Slack's full published Web API spec, if this machine has it; None otherwise."""
    return _full(SLACK_VARIABLE, BESIDE_REPOSITORY / "slack" / "slack_web_openapi_v2.json")


def full_linear_schema() -> Path | None:
    """Linear's full published GraphQL schema, if this machine has it; None otherwise."""
    return _full(LINEAR_VARIABLE, BESIDE_REPOSITORY / "linear" / "schema.graphql")


def _full(variable: str, beside: Path) -> Path | None:
    named = os.environ.get(variable)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"{variable}={named} is not a file (unset it to use the project's fixtures)")
        return path
    return beside if beside.is_file() else None
