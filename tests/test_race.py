"""The mail's violation as a real deadlock: on two CPUs with interrupt points enabled, a
failed asynchronous write's biodone -> brelse -> brelvp -> holdrele takes v_interlock on the
CPU whose thread holds it ("locking against myself"). The same seed under biodoned runs clean.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from kharness import make_kernel, new_vnode, run_thread

from vfslab.kern.vnode import VREG
from vfslab.sim.panic import Deadlock

PG = 4096


def _trial(proto: str, seed: int) -> str:
    k, disk = make_kernel(protocol=proto, ncpus=2, seed=seed, irq_stress=0.3)
    k.proto.start()
    disk.fail_blocks.update(range(0, 10_000, 3))

    def body() -> Generator[Any, Any, None]:
        vp = yield from new_vnode(k, VREG)
        for rnd in range(50):
            for lbn in range(8):
                bp = yield from k.bio.getblk(vp, (rnd * 8 + lbn) * 8, PG)
                bp.b_data[0] = bytearray(PG)
                k.bio.bawrite(bp)
            for _ in range(20):
                yield from k.vfs.vrele(vp)
                yield from k.vfs.vget(vp, 0)
            yield from k.m.tsleep("x", "x", 1_000_000)

    try:
        run_thread(k, body, until_s=100)
    except Deadlock as d:
        assert "locking against myself: v_interlock" in d.message
        chain = d.stacks[0]
        assert chain[-5:] == ["biodone_work", "brelse", "brelvp", "holdrele",
                              "simple_lock(v_interlock)"]
        return "deadlock"
    return "clean"


def test_netbsd_2_0_deadlocks_and_biodoned_does_not_under_the_same_seed() -> None:
    assert _trial("netbsd-2.0", 0) == "deadlock"
    assert _trial("biodoned", 0) == "clean"


def test_the_deadlock_is_reproducible() -> None:
    k1 = _trial("netbsd-2.0", 1)
    k2 = _trial("netbsd-2.0", 1)
    assert k1 == k2 == "deadlock"
