"""Stores through mappings as the MMU makes them: a process's second store to a page it maps
writable sets only the pmap's modified bit (no fault, no dirty list, no worklist), fsync's
putpages still finds it through pmap_clear_modify, the page daemon does not free it as
clean, and a policy that walks dirty lists gets a fault for every first store after a clean."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sysharness import run_body, stamps_of

from vfslab.kern.fcntl import O_CREAT, O_RDWR
from vfslab.kern.uvm_page import PG_CLEAN

GEN = Generator[Any, Any, Any]
PAGE = 4096
NS = 1_000_000_000


def _mapped_store_after_a_clean(policy: str) -> dict[str, Any]:
    def body(sys: Any) -> GEN:
        k = sys.k
        fd = yield from sys.open("/m", O_RDWR | O_CREAT, 0o644)
        yield from sys.ftruncate(fd, 4 * PAGE)
        vp = sys.fdp.fd_ofiles[fd].f_vp
        assert (yield from sys.mmap_write(fd, 0, 4 * PAGE)) == 4 * PAGE    # faults
        faulted = len(vp.v_uobj.dirtyq)
        assert (yield from sys.fsync(fd)) == 0                              # all clean
        written = k.disk.stats.bytes_written
        assert (yield from sys.mmap_write(fd, PAGE, PAGE)) == PAGE          # page 1 again
        pg = vp.v_uobj.memq[1]
        seen = {"listed": len(vp.v_uobj.dirtyq), "unknown": len(k.pmap.unknown),
                "clean_flag": bool(pg.flags & PG_CLEAN), "modified": pg.pmap_mod}
        assert (yield from sys.fsync(fd)) == 0
        seen["rewritten"] = k.disk.stats.bytes_written - written
        seen["after"] = len(k.pmap.unknown) + len(vp.v_uobj.dirtyq)
        seen["faulted"] = faulted
        yield from sys.close(fd)
        return seen

    _, seen = run_body(body, policy=policy)
    out: dict[str, Any] = seen
    return out


def test_a_store_through_a_writable_mapping_is_seen_only_by_the_pmap_under_2_0() -> None:
    seen = _mapped_store_after_a_clean("syncer")
    assert seen["faulted"] == 4
    # the second store found page 1 mapped writable: nothing but the modified bit
    assert (seen["listed"], seen["unknown"], seen["clean_flag"], seen["modified"]) == \
        (0, 1, True, True)
    # fsync's genfs_putpages asks pmap_clear_modify, so the data still reaches the disk
    assert seen["rewritten"] >= PAGE and seen["after"] == 0


def test_a_policy_that_walks_dirty_lists_gets_a_fault_after_each_clean() -> None:
    seen = _mapped_store_after_a_clean("trickle")
    # fsync's putpages write-protected the pages it cleaned (trickle has write_faults)
    assert (seen["listed"], seen["unknown"], seen["clean_flag"]) == (1, 0, False)
    assert seen["rewritten"] >= PAGE and seen["after"] == 0


def test_the_page_daemon_pages_out_a_page_modified_through_a_mapping() -> None:
    """A page the kernel counts clean but the pmap says modified must not be freed as clean
    under memory pressure (uvmpd_scan_inactive asks pmap_is_modified): what the daemon takes
    of the mapped file is on disk afterwards, the second store's data."""
    def body(sys: Any) -> GEN:
        k = sys.k
        fd = yield from sys.open("/m", O_RDWR | O_CREAT, 0o644)
        yield from sys.ftruncate(fd, 64 * PAGE)
        vp = sys.fdp.fd_ofiles[fd].f_vp
        yield from sys.mmap_write(fd, 0, 64 * PAGE)
        yield from sys.fsync(fd)
        yield from sys.mmap_write(fd, 0, 64 * PAGE)          # all 64 modified, unseen
        unknown = len(k.pmap.unknown)
        want = [vp.v_uobj.memq[i].stamp for i in range(64)]
        # write another file through the cache until memory runs short
        big = yield from sys.open("/big", O_RDWR | O_CREAT, 0o644)
        for _ in range(3):
            yield from sys.pwrite(big, 2 * 1024 * 1024, 0)
            yield from sys.fsync(big)
        taken = [i for i in range(64) if i not in vp.v_uobj.memq]
        yield from sys.close(big)
        yield from sys.close(fd)
        return unknown, want, taken, k.pdaemon.pageouts

    k, (unknown, want, taken, pageouts) = run_body(body, physmem_mb=2)
    assert unknown == 64
    assert pageouts > 0 and taken                 # the daemon did take some of /m's pages

    def read(sys: Any) -> GEN:
        fd = yield from sys.open("/m", O_RDWR, 0)
        got = yield from stamps_of(sys, fd, 64 * PAGE)
        yield from sys.close(fd)
        return got

    _, got = run_body(read, store=k.disk.store)
    assert [got[i] for i in taken] == [want[i] for i in taken]
