"""While `shepherd serve` plans every customer's purge and verifies every customer, other commands are still
acknowledged at once: planning and verification run on their own threads and the pure planners in a worker
process (bot/cpu.py), never on the event loop nor on the executor the acks use.

Real processes: serve on the embedded stack, the Slack stand-in in the test process.
"""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest

from bot.embedded.demo import DemoSpec
from tests.integration.serve_proc import Serve, kill_servers, new_data_dir, servers, standin

pytestmark = pytest.mark.asyncio(loop_scope="session")
SPEC = DemoSpec(scale=0.005, seed=7)


async def test_acks_answer_while_a_purge_plan_of_all_and_a_verification_of_all_compute() -> None:
    data = new_data_dir()
    emu = standin()
    serve = Serve(data, emu, None, "--scale", str(SPEC.scale), "--seed", str(SPEC.seed))
    try:
        emu.app_url = serve.ready()
        assert (await emu.slash("U_ALICE", "C_OPS", "/shepherd", "help")).status == 200  # warm
        before = len(emu.messages("C_OPS"))
        began = time.monotonic()
        heavy = [asyncio.create_task(emu.slash("U_ALICE", "C_OPS", "/purge", "plan all")),
                 asyncio.create_task(emu.slash("U_ALICE", "C_OPS", "/verify", "all"))]
        acked: list[float] = []
        for _ in range(5):
            delivery = await emu.slash("U_ALICE", "C_OPS", "/shepherd", "help")
            assert delivery.status == 200
            acked.append(time.monotonic() - began)
        # Each help was answered while the plan and the verification were still being computed.
        assert len(emu.messages("C_OPS")) == before, "a heavy command finished before the helps were acked"
        assert all(d.status == 200 for d in await asyncio.gather(*heavy))
        posted = await emu.wait_for(lambda: [m.text for m in emu.messages("C_OPS")][before:]
                                    if len(emu.messages("C_OPS")) >= before + 2 else None, timeout=180)
        done = time.monotonic() - began
        assert any("Purge plan" in t for t in posted) and any("Verification" in t for t in posted), posted
        print(f"helps acked by {acked[-1]:.3f} s; plan and verification posted by {done:.1f} s")
        assert serve.stop() == 0
        assert servers(data) == ([], [])
    finally:
        if serve.proc.poll() is None:
            serve.kill()
        emu.close()
        kill_servers(data)
        shutil.rmtree(data.parent, ignore_errors=True)
