"""The tree a scenario starts from is laid out (VOP_BALLOC over each file, its content put
straight on the disk) where writing it through the kernel 64 KiB at a time would have put it:
the same inodes, the same blocks for every logical block and indirect block, the same
bitmaps, the same version stamps; only the times differ."""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import Any

from sysharness import run_body

from vfslab.fs.fsck import file_blocks, fsck_image
from vfslab.fs.ufs_layout import INOPB, Superblock
from vfslab.kern.fcntl import O_CREAT, O_TRUNC, O_WRONLY
from vfslab.kern.init_main import Kernel
from vfslab.kern.kern_proc import ProcSyscalls
from vfslab.runner import SETUP_CHUNK, _setup
from vfslab.scenario import Scenario, SetupItem

MiB = 1 << 20
# across the direct blocks, the single indirect block's region (ends at 4 MiB + 48 KiB), the
# double indirect block and three of the blocks under it; a partial last block; empty files
TREE = [SetupItem("/d", is_dir=True), SetupItem("/d/big", 13 * MiB + 5000),
        SetupItem("/small", 100 * 1024), SetupItem("/d/empty", 0),
        SetupItem("/edge", 4 * MiB + 48 * 1024), SetupItem("/d/sparse", 3 * MiB, fill=False),
        SetupItem("/after", 300 * 1024 + 1)]


def _laid_out(k: Kernel, sys: ProcSyscalls) -> Generator[Any, Any, int]:
    yield from _setup(k, Scenario("tree", "", [], setup=TREE))
    return 0


def _written(sys: ProcSyscalls) -> Generator[Any, Any, int]:
    """The files written as the setup once wrote them: 64 KiB write(2)s."""
    for item in TREE:
        if item.is_dir:
            assert (yield from sys.mkdir(item.path, 0o755)) == 0
            continue
        fd = yield from sys.open(item.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        assert fd >= 0
        if not item.fill:
            assert (yield from sys.ftruncate(fd, item.size)) == 0
        left = item.size
        while item.fill and left > 0:
            got = yield from sys.write(fd, min(left, SETUP_CHUNK))
            assert got > 0
            left -= got
        yield from sys.close(fd)
    return 0


def _image(body: Any, laid: bool) -> dict[int, Any]:
    holder: dict[str, Kernel] = {}

    def run(sys: ProcSyscalls) -> Generator[Any, Any, int]:
        holder["k"] = sys.k
        if laid:
            return (yield from _laid_out(sys.k, sys))
        return (yield from body(sys))

    k, _ = run_body(run, fs_blocks=1 << 14, fs_inodes=256)
    return dict(k.disk.store)


def _inodes(store: dict[int, Any]) -> dict[int, tuple[int, int, int, int, int]]:
    """ino -> (mode, nlink, size, ib, dib) of every allocated inode (the times left out)."""
    sb = Superblock.unpack(store[0])
    out = {}
    for ino in range(2, sb.ninodes):
        from vfslab.fs.fsck_repair import read_dinode

        d = read_dinode(store, sb, ino)
        if d.mode:
            out[ino] = (d.mode, d.nlink, d.size, d.ib, d.dib)
    return out


def test_a_laid_out_tree_sits_block_for_block_where_writing_it_would_have_put_it() -> None:
    laid = _image(None, laid=True)
    written = _image(_written, laid=False)
    assert fsck_image(laid, 1 << 14) == []
    sb = Superblock.unpack(laid[0])
    assert _inodes(laid) == _inodes(written)
    assert len(_inodes(laid)) == len(TREE) + 1            # and the root
    for ino in _inodes(laid):
        blocks = file_blocks(laid, ino)
        assert blocks == file_blocks(written, ino), ino
        assert [laid.get(b) for b in blocks if b] == [written.get(b) for b in blocks if b], ino
    # the bitmaps, the directories' blocks and every indirect block the same
    for b in range(sb.bmap_start, sb.bmap_start + sb.bmap_blocks):
        assert laid.get(b) == written.get(b), f"bitmap block {b}"
    pointer_blocks = [b for ino, (_, _, _, ib, dib) in _inodes(laid).items()
                      for b in (ib, dib) if b]
    assert len(pointer_blocks) == 5          # /d/big: two; /small, /edge, /after: one
    dib = _inodes(laid)[max(_inodes(laid), key=lambda i: _inodes(laid)[i][2])][4]
    mids = [p for p in struct.unpack_from("<1024I", laid[dib]) if p]
    assert len(mids) == 3
    for b in pointer_blocks + mids:
        assert laid[b] == written[b], f"pointer block {b}"
    data_blocks = {b for k, v in laid.items() if isinstance(v, int) for b in [k]}
    assert data_blocks == {k for k, v in written.items() if isinstance(v, int)}
    assert len(laid) == len(written)
    assert sb.itable_start + max(_inodes(laid)) // INOPB < sb.data_start


def test_a_runs_cpu_costs_count_from_the_workloads_start_not_from_boot() -> None:
    from vfslab.runner import RunConfig, run_scenario
    from vfslab.scenario import ProcessSpec

    def idle(sys: Any, rng: Any) -> Generator[Any, Any, None]:
        yield from sys.nanosleep(100_000_000)

    def summary(setup: list[SetupItem]) -> dict[str, Any]:
        sc = Scenario("idle", "", [ProcessSpec("idle", idle)], setup=setup, duration_s=0.2)
        out: dict[str, Any] = run_scenario(RunConfig(scenario=sc, kernel={"disk": "ssd"})).summary
        return out

    bare = summary([])
    laid = summary([SetupItem("/d", is_dir=True), *[SetupItem(f"/d/f{i}", 4 * MiB)
                                                    for i in range(20)]])
    # twenty files created, laid out and the file system remounted before the workload (and
    # the boot's mount before that): none of it is the idle workload's one call. Counted from
    # boot, the laid-out run's call cost 1,343 us and saw 101 interrupts.
    assert laid["operations"] == bare["operations"] == 1
    assert laid["costs"]["cpu_us_per_op"] < 2 * bare["costs"]["cpu_us_per_op"] < 20
    assert laid["interrupts"] <= 5 and bare["interrupts"] <= 5
