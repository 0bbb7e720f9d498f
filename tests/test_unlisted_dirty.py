"""PR kern/24596's symptom as a measurement: dirty pages whose vnode is on no slot of the
syncer's worklist, and how old the oldest of them is; and 2.0's putpages taking a clean vnode
off the worklist. (In vfslab every page-dirtying path still takes the vnode lock fsync holds,
so the PR's race cannot arise by itself yet, docs/model.md; the first test takes a vnode off
the wheel by hand to check what the measurement counts.)"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sysharness import run_body

from vfslab.kern.fcntl import O_CREAT, O_RDWR, O_WRONLY
from vfslab.kern.kern_proc import ProcSyscalls

NS = 1_000_000_000


def test_dirty_pages_of_a_vnode_off_the_wheel_are_counted_and_age() -> None:
    seen: dict[str, Any] = {}

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        k = sys.k
        fd = yield from sys.open("/f", O_WRONLY | O_CREAT)
        assert (yield from sys.write(fd, 16384)) == 16384      # under 64 KiB: no write-behind
        vp = sys.fdp.fd_ofiles[fd].f_vp
        seen["listed"] = k.metrics.unlisted_dirty()
        k.syncer.vn_syncer_remove_from_worklist(vp)           # what 2.0's putpages can do
        t0 = k.m.time()
        yield from sys.nanosleep(3 * NS)
        seen["count"], since = k.metrics.unlisted_dirty()
        seen["age_s"] = (k.m.time() - since) / NS
        seen["since_ok"] = since <= t0
        yield from sys.close(fd)

    run_body(body)
    assert seen["listed"] == (0, -1)
    assert seen["count"] == 4
    assert seen["age_s"] >= 3.0 and seen["since_ok"]



def _written_file(npages: int) -> dict[int, Any]:
    """A disk holding /f, `npages` pages long, written and fsync'd in an earlier boot."""
    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        fd = yield from sys.open("/f", O_WRONLY | O_CREAT)
        assert (yield from sys.write(fd, npages * 4096)) == npages * 4096
        assert (yield from sys.fsync(fd)) == 0
        yield from sys.close(fd)

    k, _ = run_body(body, disk="hdd")
    return k.disk.store


def test_a_clean_whole_file_fsync_takes_the_vnode_off_the_worklist() -> None:
    seen: dict[str, Any] = {}

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        fd = yield from sys.open("/f", O_RDWR)
        vp = sys.fdp.fd_ofiles[fd].f_vp
        assert (yield from sys.pwrite(fd, 4096, 0)) == 4096
        seen["after_write"] = vp.v_synclist >= 0
        assert (yield from sys.fsync(fd)) == 0       # wrote a page: not clean, stays on
        seen["after_dirty_fsync"] = vp.v_synclist >= 0
        assert (yield from sys.fsync(fd)) == 0       # nothing to write: off the worklist
        seen["after_clean_fsync"] = vp.v_synclist >= 0
        yield from sys.close(fd)

    run_body(body, store=_written_file(16), disk="hdd")
    assert seen == {"after_write": True, "after_dirty_fsync": True, "after_clean_fsync": False}

