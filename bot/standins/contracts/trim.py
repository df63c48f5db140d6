"""Cut the full published Slack and Linear contracts down to what Shepherd uses: `scripts/contracts`.

    scripts/contracts [--slack FULL.json] [--linear FULL.graphql] [--check]

Without paths it reads the full files the stand-ins would use (`$SHEPHERD_SLACK_CONTRACT`,
`$SHEPHERD_LINEAR_SCHEMA`, or `shared/contracts/` beside the repository) and rewrites the fixtures in
this folder; `--check` only compares, and exits 1 if a fixture is not what the full file gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    is_leaf_type,
    is_object_type,
    is_specified_scalar_type,
    lexicographic_sort_schema,
    parse,
    print_schema,
    validate,
    visit,
)
from graphql.language import FieldNode

from bot.adapters.linear import DOCUMENTS
from bot.standins.contracts import LINEAR_FIXTURE, SLACK_FIXTURE, full_linear_schema, full_slack_contract
from bot.standins.slack.api import METHODS

# ---- Slack: OpenAPI (swagger 2.0) ---------------------------------------------------------------


def slack_methods() -> list[str]:
    """The Web API methods the Slack stand-in answers (any other answers `unknown_method`)."""
    return sorted(METHODS)


def trim_openapi(spec: dict[str, Any], methods: Iterable[str]) -> dict[str, Any]:
    """The spec with only the operations of `methods`, each whole, and the definitions they refer to."""
    wanted = set(methods)
    paths = {route: ops for route, ops in spec["paths"].items() if route.lstrip("/") in wanted}
    definitions = spec.get("definitions", {})
    used: set[str] = set()
    pending = list(_refs(paths))
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending += _refs(definitions[name])
    trimmed: dict[str, Any] = {}
    for key, value in spec.items():  # the published order, so the fixture reads like the original
        if key == "paths":
            trimmed[key] = paths
        elif key == "definitions":
            trimmed[key] = {name: body for name, body in definitions.items() if name in used}
        else:
            trimmed[key] = value
    return trimmed


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].rsplit("/", 1)[-1]] if isinstance(node.get("$ref"), str) else []
        return found + [name for value in node.values() for name in _refs(value)]
    if isinstance(node, list):
        return [name for value in node for name in _refs(value)]
    return []


def slack_fixture_text(full: Path) -> str:
    return json.dumps(trim_openapi(json.loads(full.read_text()), slack_methods()), indent=1, ensure_ascii=False) + "\n"


# ---- Linear: GraphQL SDL ------------------------------------------------------------------------


def used_fields(schema: GraphQLSchema, documents: Iterable[str]) -> dict[str, list[str]]:
    """Per object type, the fields the documents select (documents must validate against `schema`)."""
    used: dict[str, list[str]] = {}
    for document in documents:
        ast = parse(document)
        errors = validate(schema, ast)
        if errors:
            raise ValueError(f"a document does not validate against the full schema: {errors[0].message}")
        info = TypeInfo(schema)
        visit(ast, TypeInfoVisitor(info, _CollectFields(info, used)))
    return used


class _CollectFields(Visitor):
    def __init__(self, info: TypeInfo, used: dict[str, list[str]]) -> None:
        super().__init__()
        self.info = info
        self.used = used

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self.info.get_parent_type()
        if node.name.value.startswith("__") or parent is None:
            return
        if not is_object_type(parent):
            raise ValueError(f"{parent.name} is abstract: extend trim.py before selecting through it")
        fields = self.used.setdefault(parent.name, [])
        if node.name.value not in fields:
            fields.append(node.name.value)


def prune_schema(schema: GraphQLSchema, documents: Iterable[str]) -> GraphQLSchema:
    """A schema of the root fields the documents call (with every argument), the input types those take
    in full, and on each output type only the fields the documents select. Interfaces are left out."""
    used = used_fields(schema, documents)
    built: dict[str, GraphQLObjectType] = {}

    def output(kind: GraphQLOutputType) -> GraphQLOutputType:
        if isinstance(kind, GraphQLNonNull):
            inner = output(kind.of_type)
            assert not isinstance(inner, GraphQLNonNull)  # a non-null of a non-null is no GraphQL type
            return GraphQLNonNull(inner)
        if isinstance(kind, GraphQLList):
            return GraphQLList(output(kind.of_type))
        if is_leaf_type(kind):
            return kind  # scalars and enums as published
        assert isinstance(kind, GraphQLObjectType), kind
        return obj(kind)

    def obj(original: GraphQLObjectType) -> GraphQLObjectType:
        if original.name not in built:
            names = [name for name in original.fields if name in used.get(original.name, ())]
            built[original.name] = GraphQLObjectType(
                original.name, lambda: {name: field(original.fields[name]) for name in names},
                description=original.description)
        return built[original.name]

    def field(original: GraphQLField) -> GraphQLField:
        args = {name: GraphQLArgument(arg.type, default_value=arg.default_value, description=arg.description,
                                      deprecation_reason=arg.deprecation_reason)
                for name, arg in original.args.items()}  # input types are kept whole: they are closed
        return GraphQLField(output(original.type), args, description=original.description,
                            deprecation_reason=original.deprecation_reason)

    roots = {kind: getattr(schema, f"{kind}_type") for kind in ("query", "mutation")}
    kept = {kind: obj(root) for kind, root in roots.items() if root is not None and root.name in used}
    return GraphQLSchema(query=kept.get("query"), mutation=kept.get("mutation"))


def linear_fixture_text(full: Path) -> str:
    pruned = prune_schema(build_schema(full.read_text()), DOCUMENTS)
    return print_schema(lexicographic_sort_schema(pruned)) + "\n"


def subset_problems(small: GraphQLSchema, full: GraphQLSchema) -> list[str]:
    """Where `small` is not a faithful subset of `full` (each type, field and argument as published)."""
    problems: list[str] = []
    for kind in ("query", "mutation"):
        mine, theirs = getattr(small, f"{kind}_type"), getattr(full, f"{kind}_type")
        if mine is not None and (theirs is None or mine.name != theirs.name):
            problems.append(f"{kind} root {mine.name} is not the published one")
    for name, mine in small.type_map.items():
        if name.startswith("__") or is_specified_scalar_type(mine):
            continue  # introspection and GraphQL's own scalars
        theirs = full.type_map.get(name)
        if theirs is None or type(theirs) is not type(mine):
            problems.append(f"{name}: not in the published schema as a {type(mine).__name__}")
        elif is_object_type(mine):
            problems += _field_problems(mine, theirs)
        elif _shape(mine) != _shape(theirs):  # scalars, enums and input types are kept whole
            problems.append(f"{name}: differs from the published type")
    return problems


def _field_problems(mine: GraphQLNamedType, theirs: GraphQLNamedType) -> list[str]:
    problems = []
    for field_name, mine_field in getattr(mine, "fields", {}).items():
        their_field = getattr(theirs, "fields", {}).get(field_name)
        if their_field is None:
            problems.append(f"{mine.name}.{field_name}: not in the published schema")
        elif str(mine_field.type) != str(their_field.type) or _args(mine_field) != _args(their_field):
            problems.append(f"{mine.name}.{field_name}: its type or arguments differ from the published ones")
    return problems


def _args(field: GraphQLField) -> dict[str, tuple[str, Any]]:
    return {name: (str(arg.type), repr(arg.default_value)) for name, arg in field.args.items()}


def _shape(kind: GraphQLNamedType) -> Any:
    if hasattr(kind, "values"):  # enum
        return sorted(kind.values)
    if hasattr(kind, "fields"):  # input object
        return {name: (str(f.type), repr(f.default_value)) for name, f in kind.fields.items()}
    return kind.name  # scalar


# ---- the script ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/contracts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--slack", type=Path, help="Slack's full Web API OpenAPI spec (JSON)")
    parser.add_argument("--linear", type=Path, help="Linear's full GraphQL schema (SDL)")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if a fixture is stale")
    args = parser.parse_args(argv)
    sources = [(args.slack or full_slack_contract(), SLACK_FIXTURE, slack_fixture_text),
               (args.linear or full_linear_schema(), LINEAR_FIXTURE, linear_fixture_text)]
    stale = 0
    for full, fixture, make in sources:
        if full is None:
            print(f"{fixture.name}: no full published file on this machine; left as it is")
            continue
        text = make(full)
        if fixture.is_file() and fixture.read_text() == text:
            print(f"{fixture.name}: up to date with {full}")
        elif args.check:
            print(f"{fixture.name}: STALE, not what {full} gives (run scripts/contracts)")
            stale += 1
        else:
            fixture.write_text(text)
            print(f"{fixture.name}: written from {full} ({len(text):,} characters)")
    missing = [m for m in slack_methods() if f"/{m}" not in json.loads(SLACK_FIXTURE.read_text())["paths"]]
    if missing:
        print("not in Slack's published spec (the stand-in cannot check them):", ", ".join(missing))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
