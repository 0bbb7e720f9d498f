"""What the workload did, as a crash test needs it: every write (which pages of which inode,
with which version stamp, dirtied when), every fsync that completed (and which writes it
covered), every truncate and every unlink.

The kernel calls the `on_*` hooks while the run goes on (cheap appends); a crash test replays
the events up to a crash instant into a `JournalState`, the promises in force at that instant.
A completed fsync promises the pages as written by every write that completed before the fsync
began: each such page must be on the disk after a crash with that version or a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vfslab.kern.notify import KernelObserver

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.uvm_page import vm_page
    from vfslab.kern.vnode import vnode

WRITE, FSYNC, TRUNCATE, UNLINK, DROPPED, FSYNC_FAILED, FLUSH_FAILED, UNKNOWN, WHEEL = (
    0, 1, 2, 3, 4, 5, 6, 7, 8)
ALL_PAGES = 1 << 62


def _ino(vp: vnode) -> int:
    ip = vp.v_data
    return int(ip.ino) if ip is not None and hasattr(ip, "ino") else -1


class Journal(KernelObserver):
    """The event log, an observer of the kernel from boot. An event is (time, kind, ino, a,
    b, c): WRITE (ino, first page, last page, (stamp seq, dirtied at)), FSYNC (ino, mark,
    first page, last page), TRUNCATE (ino, pages kept), UNLINK (ino), DROPPED (ino, page, 0,
    the stamp seq a failed write lost), FSYNC_FAILED (ino, first page, last page, mark: a
    call that would have promised them returned an error), FLUSH_FAILED (ino, errno: vclean's
    flush of the recycled vnode failed, and 2.0 threw away what was left dirty and the
    error), UNKNOWN (ino, page, 1 or 0: the page became, or stopped being, modified through a
    mapping while the kernel counts it clean), WHEEL (ino, 1 or 0: the vnode went on or off
    the syncer's wheel). A mark is the number of events logged when the fsync began: it
    covers the WRITE events before it. (The kernel's mark counts its data_written events;
    `write_at` turns one into the other.)"""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, int, int, int, Any]] = []
        self.write_at: list[int] = []      # the event index of each WRITE

    def data_written(self, vp: vnode, stamp: int, first: int, last: int, dirtied: int,
                     now: int) -> None:
        self.write_at.append(len(self.events))
        self.events.append((now, WRITE, _ino(vp), first, last, (stamp >> 24, dirtied)))

    def data_synced(self, vp: vnode, mark: int, now: int, first: int = 0,
                    last: int = ALL_PAGES) -> None:
        at = self.write_at[mark] if mark < len(self.write_at) else len(self.events)
        self.events.append((now, FSYNC, _ino(vp), first, last, at))

    def data_sync_failed(self, vp: vnode, mark: int, now: int, first: int, last: int,
                         error: int) -> None:
        at = self.write_at[mark] if mark < len(self.write_at) else len(self.events)
        self.events.append((now, FSYNC_FAILED, _ino(vp), first, last, at))

    def data_dropped(self, vp: vnode, pages: list[tuple[int, int]], now: int) -> None:
        ino = _ino(vp)
        for page, stamp in pages:
            self.events.append((now, DROPPED, ino, page, 0, stamp >> 24))

    def flush_failed(self, vp: vnode, error: int, now: int) -> None:
        self.events.append((now, FLUSH_FAILED, _ino(vp), error, 0, None))

    def unknown_dirty(self, pg: vm_page, dirty: bool, now: int) -> None:
        vp = pg.uobject.vp
        if vp is not None:
            self.events.append((now, UNKNOWN, _ino(vp), pg.offset, int(dirty), None))

    def worklist_changed(self, vp: vnode, on: bool, now: int) -> None:
        self.events.append((now, WHEEL, _ino(vp), int(on), 0, None))

    def truncated(self, ino: int, keep_pages: int, now: int) -> None:
        self.events.append((now, TRUNCATE, ino, keep_pages, 0, None))

    def unlinked(self, ino: int, now: int) -> None:
        self.events.append((now, UNLINK, ino, 0, 0, None))

    def in_time_order(self) -> list[int]:
        """Event indices by time (stable): CPUs' clocks run apart by less than a quantum, so
        the log is nearly sorted already."""
        ev = self.events
        return sorted(range(len(ev)), key=lambda i: ev[i][0])


@dataclass
class FileState:
    """One inode's writes and promises at an instant."""

    pages: dict[int, list[int]] = field(default_factory=dict)   # page -> WRITE event indices
    full_mark: int = 0                       # the latest whole-file fsync's mark
    ranges: list[tuple[int, int, int]] = field(default_factory=list)   # (mark, first, last)
    dropped: dict[int, int] = field(default_factory=dict)   # page -> newest seq a failed write lost
    failed: list[tuple[int, int, int]] = field(default_factory=list)   # (mark, first, last)
    flush_failures: list[int] = field(default_factory=list)   # when vclean's flush failed
    on_wheel: bool = False                   # the vnode is on the syncer's wheel
    unknown: set[int] = field(default_factory=set)   # pages dirty unknown to the kernel

    def error_told(self, page: int, write: int) -> bool:
        """Whether a call that would have promised `page` returned an error after WRITE
        event `write`: the program was told its data may be gone."""
        return any(m > write and lo <= page <= hi for m, lo, hi in self.failed)

    def promised_mark(self, page: int) -> int:
        mk = self.full_mark
        for m, lo, hi in self.ranges:
            if lo <= page <= hi and m > mk:
                mk = m
        return mk


def journal_of(k: Kernel) -> Journal:
    """The journal a run kept (RunConfig.record_crash); an error naming the cause if none."""
    j = k.journal
    if j is None:
        raise RuntimeError("this run kept no crash journal: run it with record_crash=True")
    return j


class JournalState:
    """The journal replayed up to an instant; `advance(t)` moves the instant forward."""

    def __init__(self, journal: Journal) -> None:
        self.j = journal
        self.order = journal.in_time_order()
        self.pos = 0
        self.files: dict[int, FileState] = {}
        self.now = 0

    def advance(self, t: int) -> None:
        ev = self.j.events
        order = self.order
        files = self.files
        while self.pos < len(order) and ev[order[self.pos]][0] <= t:
            i = order[self.pos]
            self.pos += 1
            _, kind, ino, a, b, c = ev[i]
            if kind == WRITE:
                fs = files.get(ino)
                if fs is None:
                    fs = files[ino] = FileState()
                pages = fs.pages
                for pg in range(a, b + 1):
                    lst = pages.get(pg)
                    if lst is None:
                        pages[pg] = [i]
                    else:
                        lst.append(i)
            elif kind == FSYNC:
                fs = files.get(ino)
                if fs is None:
                    continue
                if a == 0 and b == ALL_PAGES:
                    fs.full_mark = max(fs.full_mark, c)
                    fs.ranges = [r for r in fs.ranges if r[0] > fs.full_mark]
                else:
                    fs.ranges.append((c, a, b))
            elif kind == TRUNCATE:
                fs = files.get(ino)
                if fs is not None:
                    for pg in [p for p in fs.pages if p >= a]:
                        del fs.pages[pg]
            elif kind == DROPPED:
                fs = files.get(ino)
                if fs is not None and c > fs.dropped.get(a, 0):
                    fs.dropped[a] = c
            elif kind == FSYNC_FAILED:
                fs = files.get(ino)
                if fs is not None:
                    fs.failed.append((c, a, b))
            elif kind == FLUSH_FAILED:
                fs = files.get(ino)
                if fs is not None:
                    fs.flush_failures.append(ev[i][0])
            elif kind == UNKNOWN:
                fs = files.get(ino)
                if fs is None:
                    fs = files[ino] = FileState()
                if b:
                    fs.unknown.add(a)
                else:
                    fs.unknown.discard(a)
            elif kind == WHEEL:
                fs = files.get(ino)
                if fs is None:
                    fs = files[ino] = FileState()
                fs.on_wheel = bool(a)
            else:
                files.pop(ino, None)
        self.now = t

    def write_info(self, i: int) -> tuple[int, int]:
        """(stamp seq, dirtied at) of WRITE event i."""
        info: tuple[int, int] = self.j.events[i][5]
        return info
