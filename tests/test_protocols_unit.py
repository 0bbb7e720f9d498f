"""Each locking protocol runs the buffer cache's paths (delayed, async and failing writes,
fsync waits, vnode recycling) without panics, and differs where it should."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from kharness import make_kernel, new_vnode, run_thread

from vfslab.kern.buf import B_INVAL
from vfslab.kern.vnode import VREG
from vfslab.kern.vnode_if import FSYNC_WAIT, VOP_FSYNC

PG = 4096
PROTOCOLS = ["netbsd-2.0", "splbio-always", "split-interlock", "biodoned"]


def _workout(k: Any, disk: Any) -> Generator[Any, Any, Any]:
    vp = yield from new_vnode(k, VREG)
    vp.v_size = 8 * PG
    disk.fail_blocks.add(7)
    bufs = []
    for lbn in range(8):
        bp = yield from k.bio.getblk(vp, lbn * 8, PG)
        bp.b_data[0] = bytearray(PG)
        k.bio.bdwrite(bp)
        bufs.append(bp)
    yield from k.ubc.write(vp, 0, 8 * PG, stamp=11)
    err = yield from VOP_FSYNC(vp, FSYNC_WAIT)
    yield from k.vfs.vrele(vp)
    other = yield from new_vnode(k, VREG)
    return vp, bufs, err, other


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_protocol_runs_the_paths(proto: str) -> None:
    k, disk = make_kernel(protocol=proto, maxvnodes=2)
    k.proto.start()
    vp, bufs, err, other = run_thread(k, lambda: _workout(k, disk))
    assert err == 0
    assert bufs[7].b_flags & B_INVAL and bufs[7].b_vp is None   # the failed metadata write
    assert k.bio.stats.biodone_errors == 1
    assert vp.v_numoutput == 0 and k.uvm.ndirty == 0
    assert not vp.v_dirtyblkhd


def test_biodoned_runs_biodone_in_a_thread_and_2_0_in_the_interrupt() -> None:
    where: dict[str, list[bool]] = {}
    for proto in ("netbsd-2.0", "biodoned"):
        k, disk = make_kernel(protocol=proto)
        k.proto.start()
        seen: list[bool] = []
        real = k.bio.biodone_work

        def spy(bp: Any, real: Any = real, seen: list[bool] = seen, k: Any = k) -> None:
            seen.append(k.m.cur.intr)
            real(bp)

        k.bio.biodone_work = spy  # type: ignore[method-assign]
        run_thread(k, lambda k=k, disk=disk: _workout(k, disk))
        where[proto] = seen
    assert where["netbsd-2.0"] and all(where["netbsd-2.0"])
    assert where["biodoned"] and not any(where["biodoned"])
