"""`shepherd dev` keeps the demo it loaded, refuses another spec, and `--reset` replaces it."""

from __future__ import annotations

import shutil

from tests.integration.serve_proc import new_data_dir, servers, shepherd


def test_reset_is_the_only_way_to_another_spec() -> None:
    data = new_data_dir()
    try:
        first = shepherd(data, "dev", "--scale", "0.0005", "--ready-exit")
        assert first.returncode == 0, first.stderr
        assert "demo loaded now" in first.stdout and "--scale 0.0005 --seed 7" in first.stdout

        again = shepherd(data, "dev", "--ready-exit")
        assert again.returncode == 0, again.stderr
        assert "demo reused" in again.stdout and "--scale 0.0005" in again.stdout

        refused = shepherd(data, "dev", "--scale", "0.001", "--ready-exit")
        assert refused.returncode == 2 and "--scale 0.001 (loaded: 0.0005)" in refused.stderr
        assert "--reset" in refused.stderr and "Traceback" not in refused.stderr

        reset = shepherd(data, "dev", "--scale", "0.001", "--reset", "--ready-exit")
        assert reset.returncode == 0, reset.stderr
        assert "demo loaded now" in reset.stdout and "--scale 0.001 --seed 7" in reset.stdout
        assert "--reset deleted the data" in reset.stderr
        assert servers(data) == ([], [])
    finally:
        shutil.rmtree(data.parent, ignore_errors=True)
