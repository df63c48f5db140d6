"""The locks (`scripts/lock`) agree with pyproject.toml and with each other, every pin is hash-checked, and
the environment these tests run in is exactly requirements-dev.lock: what CI tested is what installs."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)", re.M)


def pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    found = {canonicalize_name(m.group(1)): (m.group(2), m.group(3)) for m in PIN.finditer(text)}
    assert found, name
    unhashed = sorted(n for n, (_, hashes) in found.items() if "--hash=sha256:" not in hashes)
    assert not unhashed, f"{name}: pins without a hash: {unhashed}"
    return {n: v for n, (v, _) in found.items()}


def test_the_locks_pin_pyproject_within_its_ranges_and_agree() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    for lock, wanted in ((runtime, project["dependencies"]), (dev, project["optional-dependencies"]["dev"])):
        for line in wanted:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name in lock, f"{req.name} is not locked: run scripts/lock"
            assert req.specifier.contains(lock[name], prereleases=True), f"{name}=={lock[name]} is not {req}"
    assert {n: v for n, v in dev.items() if n in runtime} == runtime, "the dev lock moved a runtime pin"
    assert not {"pytest", "mypy", "ruff"} & runtime.keys(), "dev tools in the production lock"


def test_the_environment_is_the_dev_lock() -> None:
    wrong = {name: (pinned, version(name)) for name, pinned in pins("requirements-dev.lock").items()
             if version(name) != pinned}
    assert not wrong, f"installed differs from requirements-dev.lock (pinned, installed): {wrong}"
