"""What a report's call chains say: every frame a function of NetBSD 2.0 or marked as what it
is, each with the file:line of its call, each lock frame naming its lock; and every lock the
kernel takes, taken from a 2.0 function that took it (the acquisitions table below)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from vfslab.check.checker import Checker
from vfslab.check.report import chain_lines, frames_json, kernel_frames, to_json
from vfslab.runner import RunConfig, run_scenario
from vfslab.sim import stack

ROOT = Path(__file__).resolve().parent.parent

# Every lock class the kernel takes, with the NetBSD 2.0 functions that take it (the innermost
# 2.0 function of the acquisition's chain: helpers, protocol decisions and the program's
# frames are skipped; "[role] name" is an acquisition with no 2.0 function in its chain: the
# innermost frame, with the role the kernel marks it with). A lock taken from a function not
# listed here is an acquisition nobody has checked against the C: look it up and add it, or
# remove it.
ACQUISITIONS: dict[str, set[str]] = {
    # uvm_pager.c: uvm_aio_biodone queues for the aiodone daemon, which takes it back
    "aiodoned_lock": {"uvm_aio_biodone", "uvm_aiodone_daemon"},
    # vfs_bio.c: the buffer's interlock around B_BUSY/B_DONE and biowait's sleep
    "b_interlock": {"[helper] biodone_work", "bawrite", "bdwrite", "biodone", "biowait",
                    "brelse", "bwrite", "ffs_fsync", "getblk", "getnewbuf", "ltsleep",
                    "vflushbuf", "vinvalbuf"},
    # the biodoned fix's queue
    "biodone_lock": {"[protocol] biodoned", "[helper] biodone_work", "biodone"},
    "bqueue_slock": {"brelse", "getblk", "getnewbuf"},
    "f_slock": {"FILE_UNUSE", "fd_getfile"},          # kern_descrip.c, file.h
    # genfs's node lock: ffs_write around GOP_ALLOC (ufs_readwrite.c), genfs_getpages
    # around its block mapping and reads (genfs_vnops.c)
    "g_glock": {"ffs_write", "genfs_getpages"},
    "g_glock.lk_interlock": {"ffs_write", "genfs_getpages", "ltsleep"},
    "global_v_numoutput_slock": {"bwrite", "ffs_fsync", "genfs_putpages", "gop_write",
                                 "ltsleep", "vflushbuf", "vwakeup"},   # the mail's fix
    "mnt_lock": {"dounmount", "vfs_busy"},
    "mnt_lock.lk_interlock": {"dounmount", "vfs_busy", "vfs_unbusy", "ltsleep"},
    "mntvnode_slock": {"ffs_sync", "insmntque", "vflush"},
    "mountlist_slock": {"dounmount", "sys_sync"},
    "syncer_data_lock": {"ffs_write", "reassignbuf", "sched_sync", "vn_syncer_add_to_worklist",
                         "vn_syncer_remove_from_worklist"},
    "synclk": {"dounmount", "sched_sync"},
    "synclk.lk_interlock": {"dounmount", "ltsleep", "sched_sync"},
    "ubc_object.vmobjlock": {"ubc_alloc", "ubc_release"},      # uvm_bio.c
    "ufs_ihash_slock": {"ufs_ihashins", "ufs_ihashlookup", "ufs_ihashrem"},
    "uvm.fpageqlock": {"uvm_pagealloc", "uvm_pagefree"},
    "uvm.pageqlock": {"uvm_lock_pageq"},
    # split-interlock's lock for what biodone touches (v_numoutput, the buffer lists)
    "v_bio_interlock": {"bgetvp", "brelvp", "bwrite", "ffs_fsync", "ffs_sync",
                        "genfs_putpages", "gop_write", "holdrele", "ltsleep", "reassignbuf",
                        "vflushbuf", "vhold", "vinvalbuf", "vput", "vrele", "vwakeup"},
    "v_interlock": {"bgetvp", "brelvp", "bwrite", "ffs_fsync", "ffs_read", "ffs_sync",
                    "ffs_write", "genfs_getpages", "genfs_putpages", "gop_write", "holdrele",
                    "ltsleep", "reassignbuf", "sync_inactive",
                    # a store through a mapping: uvm_fault's lock of the vnode's object
                    "[helper] sys_mmap_write",
                    "uvm_aio_aiodone", "uvmpd_scan", "vflush", "vflushbuf", "vget", "vgonel",
                    "vhold", "vinvalbuf", "vn_lock", "vput", "vref", "vrele", "vwakeup",
                    "getnewvnode", "vclean", "vrecycle"},
    "vnlock": {"genfs_lock", "ufs_ihashins"},
    "vnlock.lk_interlock": {"genfs_lock", "genfs_unlock", "ltsleep", "ufs_ihashins"},
    "vnode_free_list_slock": {"getnewvnode", "holdrele", "vget", "vput", "vrele", "vgonel",
                              "vhold"},
}

# Scenarios and protocols whose runs between them take every lock above.
RUNS = [("mixed", "netbsd-2.0"), ("mmapwriter", "netbsd-2.0"), ("database", "split-interlock"),
        ("smallfiles", "biodoned"), ("baddisk", "splbio-always")]


def _acquisitions(monkeypatch: pytest.MonkeyPatch, scenario: str, protocol: str
                  ) -> tuple[dict[tuple[str, str], list[Any]], Any]:
    """(lock class, innermost 2.0 function) -> a chain of the first such acquisition."""
    seen: dict[tuple[str, str], list[Any]] = {}
    on_lock = Checker.on_lock

    def spy(self: Checker, lk: Any, ctx: Any, trylock: bool) -> None:
        chain: list[Any] = stack.call_chain(2)
        inner = [f for f in chain[:-1] if f != "lockmgr"]
        fn = next((str(f) for f in reversed(kernel_frames(inner))),
                  f"[{inner[-1].role}] {inner[-1]}" if inner else "?")
        seen.setdefault((lk.cls, fn), chain)
        on_lock(self, lk, ctx, trylock)

    monkeypatch.setattr(Checker, "on_lock", spy)
    res = run_scenario(RunConfig(scenario=scenario, protocol=protocol, seed=0, ncpus=2,
                                 check=True, duration_s=1))
    return seen, res


@pytest.fixture(scope="module")
def acquired() -> Iterator[dict[tuple[str, str], list[Any]]]:
    mp = pytest.MonkeyPatch()
    out: dict[tuple[str, str], list[Any]] = {}
    for sc, proto in RUNS:
        seen, _ = _acquisitions(mp, sc, proto)
        for key, chain in seen.items():
            out.setdefault(key, chain)
        mp.undo()
    yield out


def test_every_lock_is_taken_only_from_a_2_0_function_that_took_it(
        acquired: dict[tuple[str, str], list[Any]]) -> None:
    unknown = {key: " -> ".join(chain) for key, chain in acquired.items()
               if key[1] not in ACQUISITIONS.get(key[0], set())}
    assert not unknown, unknown


def test_the_table_lists_no_lock_the_kernel_does_not_take(
        acquired: dict[tuple[str, str], list[Any]]) -> None:
    assert {cls for cls, _ in acquired} == set(ACQUISITIONS)


# Every frame a chain shows that is not marked (helper, protocol, program, context) is a
# function of NetBSD 2.0 by that name (or a macro of it: FILE_UNUSE, gop_write for GOP_WRITE).
NETBSD_2_0 = {
    "FILE_UNUSE", "bawrite", "bdwrite", "bgetvp", "bio_doread", "biodone", "biowait", "bread",
    "brelse", "brelvp", "bwrite", "closef", "dofileread", "dofilewrite", "dounmount",
    "fd_getfile", "ffs_fsync", "ffs_mountfs", "ffs_read", "ffs_reclaim", "ffs_root",
    "ffs_sbupdate", "ffs_sync", "ffs_unmount", "ffs_valloc", "ffs_vget", "ffs_write",
    "genfs_getpages", "genfs_lock", "genfs_putpages", "genfs_unlock", "getblk", "getnewbuf",
    "getnewvnode", "gop_write", "holdrele", "insmntque", "lockmgr", "lookup", "ltsleep",
    "namei", "reassignbuf", "sched_sync", "simple_lock", "simple_lock_try", "spec_fsync",
    "sync_inactive", "sync_reclaim", "sys_close", "sys_fsync", "sys_mkdir", "sys_open",
    "sys_pread", "sys_read", "sys_write", "ubc_alloc", "ubc_release", "ufs_create",
    "ufs_ihashins", "ufs_ihashlookup", "ufs_ihashrem", "ufs_lookup", "ufs_makeinode",
    "ufs_mkdir", "ufs_reclaim", "uvm_aio_aiodone", "uvm_aio_biodone", "uvm_aiodone_daemon",
    "uvm_lock_pageq", "uvm_pagealloc", "uvm_pagefree", "uvm_pageout", "uvmpd_scan", "vflush",
    "vflushbuf", "vfs_allocate_syncvnode", "vfs_deallocate_syncvnode", "vfs_mountroot",
    "vget", "vgonel", "vhold", "vinvalbuf", "vn_close", "vn_lock", "vn_open", "vn_read",
    "vn_syncer_add_to_worklist", "vn_syncer_remove_from_worklist", "vn_write", "vput",
    "vref", "vrele", "vwakeup", "vfs_busy", "vfs_unbusy", "sys_sync", "vclean", "vrecycle",
    "sys_unlink", "sys_rename", "ufs_remove", "ufs_rename", "ufs_inactive", "ffs_truncate",
    "ffs_update", "ffs_balloc", "ffs_alloc", "ufs_direnter", "ufs_dirremove", "ufs_bmap",
    "ufs_bmaparray", "ufs_blkatoff", "cache_lookup", "cache_enter", "vn_stat", "sys_fstat",
    "sys_lseek", "sys_pwrite", "sys_fdatasync", "sys_ftruncate", "sys_truncate",
    "sys_rmdir", "sys_link", "sys_symlink", "sys_readlink", "sys_stat", "sys_lstat",
    "sys_chdir", "sys_dup", "sys_dup2", "uvm_pageactivate", "uvm_pagedeactivate",
}


def test_every_unmarked_frame_is_a_netbsd_2_0_function(
        acquired: dict[tuple[str, str], list[Any]]) -> None:
    names = {str(f).split("(")[0] for chain in acquired.values() for f in chain if not f.role}
    assert names - NETBSD_2_0 == set()


@cache
def _functions(path: str) -> list[tuple[str, int, int]]:
    tree = ast.parse((ROOT / path).read_text())
    return [(n.name, n.lineno, n.end_lineno or n.lineno) for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef)]


def test_each_frame_is_where_its_function_is(
        acquired: dict[tuple[str, str], list[Any]]) -> None:
    frames = {f for chain in acquired.values() for f in chain}
    assert len(frames) > 100
    for f in frames:
        path, line = f.where.rsplit(":", 1)
        name = str(f).split("(")[0]
        assert any(n == name and a <= int(line) <= b for n, a, b in _functions(path)), \
            f"{f} at {f.where}"


def test_frames_that_are_not_2_0_functions_say_what_they_are(
        acquired: dict[tuple[str, str], list[Any]]) -> None:
    roles = {f.role for chain in acquired.values() for f in chain}
    assert {"helper", "program", "context", "protocol"} <= roles
    named = {str(f): f.role for chain in acquired.values() for f in chain}
    # the examples of helpers mixed with kernel functions
    assert named["biodone_work"] == "helper" and named["meta_write"] == "helper"
    assert named["add_if_absent"] == "helper"
    assert named["body"] == "program" and named["main"] == "program"
    # and 2.0's own are not marked
    assert named["brelvp"] == named["holdrele"] == named["genfs_putpages"] == ""


def test_a_report_names_the_lock_of_each_lock_frame_and_gives_file_and_line() -> None:
    res = run_scenario(RunConfig(scenario="protocol", protocol="netbsd-2.0", check=True,
                                 duration_s=3))
    fs = res.checker.findings()
    inv = [f for f in fs if f.kind == "irq-lock-inversion"]
    assert inv
    for f in inv:
        for chain in f.stacks:
            last = chain[-1]
            assert last.startswith(("simple_lock(", "simple_lock_try(", "lockmgr(")), chain
            assert last.where.startswith("vfslab/kern/lock.py:")
    rows = chain_lines(inv[0].stacks[0])
    assert all(r.rstrip().split()[-1].split(":")[-1].isdigit() for r in rows), rows
    js = to_json(res.checker, "netbsd-2.0", "protocol")
    frames = js["findings"][0]["frames"][0]
    assert frames == frames_json(fs[0].stacks[0])
    assert all(fr["at"].startswith("vfslab/") for fr in frames)
    text = "\n".join(chain_lines(inv[0].stacks[1]))
    assert "[vfslab helper]" in text or "[context]" in text
