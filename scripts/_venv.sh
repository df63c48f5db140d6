# Sourced by scripts/dev and scripts/test: create or reuse .venv at the repository root and install
# exactly requirements-dev.lock (pinned, hash-checked, nothing resolved here), then the project itself
# without dependencies. It installs again when requirements-dev.lock or pyproject.toml changed since.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=.venv/.shepherd-installed
WANT="$(cat requirements-dev.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
  .venv/bin/python -m pip install --quiet --no-deps -e .
  # Exactly the lock: remove what an earlier lock installed and this one no longer lists.
  stale="$(.venv/bin/python - <<'PY'
import re
from importlib.metadata import distributions
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
locked = {norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open("requirements-dev.lock").read(), re.M)}
keep = locked | {"pip", "setuptools", "shepherd-bot"}
print(" ".join(sorted({norm(d.metadata["Name"]) for d in distributions()} - keep)))
PY
)"
  if [ -n "$stale" ]; then .venv/bin/python -m pip uninstall --quiet --yes $stale; fi
  echo "$WANT" > "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
