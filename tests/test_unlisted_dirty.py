"""PR kern/24596's symptom as a measurement: dirty pages whose vnode is on no slot of the
syncer's worklist, and how old the oldest of them is. (The modelled 2.0 putpages does not yet
take vnodes off the wheel on its own, issue #14 item 3, so these tests take one off by hand to
check what the measurement counts.)"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sysharness import run_body

from vfslab.kern.fcntl import O_CREAT, O_WRONLY
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

