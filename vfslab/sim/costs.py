"""CPU time charged by emulated work, in nanoseconds.

The defaults are a round model of a ~2 GHz machine of 2004 (a Pentium 4 or Athlon 64 running
NetBSD 2.0): a trap costs about a microsecond, an interrupt's entry and exit a little more, a
context switch a few microseconds, and memcpy runs at about 1.5 GB/s. They are a model to compare
designs with, not a measurement: every field can be set from a scenario or `--set cost.NAME=NS`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(slots=True)
class CostModel:
    syscall: int = 800           # trap, argument copy-in, return to user
    ctxsw: int = 3000            # mi_switch + cpu_switch + cache refill
    intr_entry: int = 1000       # vector, save state, find the handler
    intr_exit: int = 500
    spl: int = 15                # splraise / splx (pending check included)
    lock: int = 40               # simple_lock / simple_unlock (uncontended, bus-locked op)
    lockmgr: int = 250           # lockmgr acquire or release
    copy_per_kib: int = 650      # uiomove: ~1.5 GB/s
    page_lookup: int = 200       # uvm_pagelookup
    page_alloc: int = 600        # uvm_pagealloc with queue work
    buf_lookup: int = 250        # incore: buffer hash walk
    buf_op: int = 400            # getblk/brelse queue manipulation
    driver_start: int = 2000     # strategy routine and controller programming
    driver_done: int = 1500      # completion status read in the handler
    fs_op: int = 1500            # namei component, inode work of a metadata syscall
    dirent_scan: int = 20        # ufs_lookup: one directory entry compared (namlen, bcmp)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
