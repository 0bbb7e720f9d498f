"""The kernel's one notification vector, after NetBSD's `bioops` (sys/sys/buf.h, 2.0): the
soft-updates hooks that vfs_bio.c calls without knowing who is behind them.

The kernel announces what happened (a page or buffer dirtied or cleaned, an object dirtied, a
writer at its throttle point, an I/O started or completed, data written or promised durable, a
system call done); writeback policies, the crash journal and the metrics subscribe by
overriding the methods of `KernelObserver` they care about. The kernel names none of them.

Dispatch is by per-event tuples holding only the observers that override the event, so an
event nobody watches costs an empty loop; hot paths (a page dirtied) test the tuple first.

Events are called where the kernel is (at splbio for buffer events, with the object's lock
for page events): an observer must not sleep or take locks in one, except in
`write_throttle`, a generator run by the writer itself at the point where 2.0's successors
call balance_dirty_pages.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vfslab.kern.buf import buf
    from vfslab.kern.uvm_page import vm_page
    from vfslab.kern.vnode import uvm_object, vnode

EVENTS = ("object_dirtied", "page_dirtied", "page_cleaned", "buf_dirtied", "buf_cleaned",
          "write_throttle", "io_started", "io_done", "data_written", "data_synced",
          "data_sync_failed", "data_dropped", "flush_failed", "unknown_dirty",
          "worklist_changed", "truncated", "unlinked", "syscall_done",
          "syscall_record", "writeback_pass")


@dataclass(slots=True)
class CallRecord:
    """One system call, as a per-call record keeps it: who made it, on what, what it
    returned, how long it took and the longest sleep it made (`wait`: what it slept on,
    described; `wait_ns`: how long, until it ran again)."""

    pid: int
    proc: str
    call: str                 # fsync and fdatasync apart, pread as pread
    path: str                 # the path, or the path the descriptor was opened by
    off: int                  # -1: none (the file offset for read/write)
    nbytes: int
    rv: int                   # negative: an errno
    start: int
    end: int
    wait_ns: int
    wait: str


class KernelObserver:
    """Override the events you want; each default does nothing and is not dispatched."""

    def object_dirtied(self, uobj: uvm_object, now: int) -> None:
        """An object got its first dirty page (object lock held)."""

    def page_dirtied(self, pg: vm_page, now: int) -> None:
        """A clean page became dirty (object lock held)."""

    def page_cleaned(self, pg: vm_page) -> None:
        """A dirty page is being written or was discarded (object lock held); it is
        PG_CLEAN and off the dirty lists already, and `pg.dirtied_at` still says when it was
        dirtied."""

    def buf_dirtied(self, bp: buf) -> None:
        """A buffer became B_DELWRI, or a delayed buffer was dated back (at splbio)."""

    def buf_cleaned(self, bp: buf) -> None:
        """A B_DELWRI buffer was written or invalidated (at splbio)."""

    def write_throttle(self, vp: vnode, npages: int) -> Generator[Any, Any, None]:
        """A writer has just dirtied `npages` of `vp` and may be paused here (no locks held)."""
        yield from ()

    def io_started(self, bp: buf) -> None:
        """A request was handed to the disk driver."""

    def io_done(self, bp: buf) -> None:
        """The disk completed a request (in the completion interrupt, before biodone)."""

    def data_written(self, vp: vnode, stamp: int, first: int, last: int, dirtied: int,
                     now: int) -> None:
        """write(2) put version `stamp` into pages first..last of vp."""

    def data_synced(self, vp: vnode, mark: int, now: int, first: int, last: int) -> None:
        """An fsync, fdatasync, msync or O_SYNC write completed: every data_written before the
        `mark`-th (see Notify.writes) covering pages first..last of vp is promised durable."""

    def data_sync_failed(self, vp: vnode, mark: int, now: int, first: int, last: int,
                         error: int) -> None:
        """An fsync, fdatasync, msync or O_SYNC write covering pages first..last of vp
        returned `error`: the program was told that data written before the `mark`-th
        data_written may not be on disk."""

    def data_dropped(self, vp: vnode, pages: list[tuple[int, int]], now: int) -> None:
        """A failed page write lost its data (uvm.write_error=drop, 2.0's uvm_aio_aiodone):
        the pages (page index, the version stamp it held) are clean and will not be written
        again (object lock held)."""

    def flush_failed(self, vp: vnode, error: int, now: int) -> None:
        """vclean's flush (vinvalbuf with V_SAVE) of a vnode being recycled failed with
        `error`. 2.0 then calls vinvalbuf without V_SAVE: the dirty buffers left (indirect
        blocks' pointers) are thrown away unwritten, and the error reaches no program. With
        bio.write_error=report or uvm.write_error=redirty it is the error latched for the
        file's next fsync that this flush took."""

    def unknown_dirty(self, pg: vm_page, dirty: bool, now: int) -> None:
        """A page became modified through a mapping while the kernel counts it clean
        (`dirty`: the pmap's modified bit on a PG_CLEAN page, PR kern/24596's problem 3), or
        stopped being so (the kernel learnt of it, cleared the bit, or freed the page)."""

    def worklist_changed(self, vp: vnode, on: bool, now: int) -> None:
        """A vnode was put on the syncer's wheel (`on`) from off it, or taken off it (what
        the 2004 syncer walks: a dirty vnode off it is PR kern/24596's problem 2)."""

    def truncated(self, ino: int, keep_pages: int, now: int) -> None:
        """Inode `ino` keeps only its first `keep_pages` pages."""

    def unlinked(self, ino: int, now: int) -> None:
        """Inode `ino` lost its last name."""

    def syscall_done(self, op: str, start: int, end: int, rv: int) -> None:
        """A process's system call returned `rv` (negative: an errno)."""

    def syscall_record(self, rec: CallRecord) -> None:
        """The same call in detail (built only if an observer takes it)."""

    def writeback_pass(self, daemon: str, kind: str, start: int, end: int) -> None:
        """A writeback daemon finished one pass (the syncer's slot, trickle's wake-up,
        Linux's kupdate or background work) that began at `start`."""


class Notify:
    """The vector: `attach` an observer, and the kernel calls through the event tuples."""

    def __init__(self) -> None:
        self.observers: list[KernelObserver] = []
        self.writes = 0               # data_written events so far (the mark of a promise)
        self.object_dirtied: tuple[Callable[[uvm_object, int], None], ...] = ()
        self.page_dirtied: tuple[Callable[[vm_page, int], None], ...] = ()
        self.page_cleaned: tuple[Callable[[vm_page], None], ...] = ()
        self.buf_dirtied: tuple[Callable[[buf], None], ...] = ()
        self.buf_cleaned: tuple[Callable[[buf], None], ...] = ()
        self.write_throttle: tuple[Callable[[vnode, int], Generator[Any, Any, None]], ...] = ()
        self.io_started: tuple[Callable[[buf], None], ...] = ()
        self.io_done: tuple[Callable[[buf], None], ...] = ()
        self.data_written: tuple[Callable[[vnode, int, int, int, int, int], None], ...] = ()
        self.data_synced: tuple[Callable[[vnode, int, int, int, int], None], ...] = ()
        self.data_sync_failed: tuple[Callable[[vnode, int, int, int, int, int], None],
                                     ...] = ()
        self.data_dropped: tuple[Callable[[vnode, list[tuple[int, int]], int], None], ...] = ()
        self.flush_failed: tuple[Callable[[vnode, int, int], None], ...] = ()
        self.unknown_dirty: tuple[Callable[[vm_page, bool, int], None], ...] = ()
        self.worklist_changed: tuple[Callable[[vnode, bool, int], None], ...] = ()
        self.truncated: tuple[Callable[[int, int, int], None], ...] = ()
        self.unlinked: tuple[Callable[[int, int], None], ...] = ()
        self.syscall_done: tuple[Callable[[str, int, int, int], None], ...] = ()
        self.syscall_record: tuple[Callable[[CallRecord], None], ...] = ()
        self.writeback_pass: tuple[Callable[[str, str, int, int], None], ...] = ()

    def attach(self, obs: KernelObserver) -> None:
        self.observers.append(obs)
        for ev in EVENTS:
            if getattr(type(obs), ev) is not getattr(KernelObserver, ev):
                setattr(self, ev, (*getattr(self, ev), getattr(obs, ev)))

    def detach(self, obs: KernelObserver) -> None:
        self.observers.remove(obs)
        for ev in EVENTS:
            setattr(self, ev, tuple(f for f in getattr(self, ev)
                                    if getattr(f, "__self__", None) is not obs))

    # ---- the few events with bookkeeping of their own --------------------------------------
    def wrote(self, vp: vnode, stamp: int, first: int, last: int, dirtied: int,
              now: int) -> None:
        self.writes += 1
        for f in self.data_written:
            f(vp, stamp, first, last, dirtied, now)

    def synced(self, vp: vnode, mark: int, now: int, first: int = 0,
               last: int = 1 << 62, error: int = 0) -> None:
        """A call that promises data ended: with 0, data_synced; with an errno,
        data_sync_failed."""
        if error:
            for g in self.data_sync_failed:
                g(vp, mark, now, first, last, error)
            return
        for f in self.data_synced:
            f(vp, mark, now, first, last)


__all__ = ["EVENTS", "CallRecord", "KernelObserver", "Notify"]
