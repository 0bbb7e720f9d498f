"""The writeback-policy interface: how dirty pages and buffers reach the disk.

A policy is an observer of the kernel (`KernelObserver`: override the events you need) with
daemons of its own, and this class is the whole API it needs; none of it reaches past the
kernel's interfaces (VOP_PUTPAGES, bawrite, VOP_UPDATE, the page cache's dirty queues):

    what is dirty      dirty_vnodes(), dirty_pages(vp), dirty_buffers(), ndirty_pages(),
                       ndirty_buffers(), npages(), nfree_pages(), nreserved_pages(); each
                       page has .offset (page index) and
                       .dirtied_at, each buffer .b_dirtied_at (ns), in dirtying order
    writing            flush_pages(vp, pages=..., start=, end=, sync=) (clustered into 64 KiB
                       I/Os), flush_buffer(bp), flush_vnode_buffers(vp), update_inode(vp)
    time and threads   now(), spawn(name, body), sleep(ns, wmesg), callout(period_ns, fn),
                       current_thread() (who is running: a writer in write_throttle),
                       pass_done(kind, start) (a daemon's pass, for traces)
    throttling         override write_throttle(vp, npages) (a generator run by the writer) and
                       pause in it with `yield from self.pause(vp, ns)`
    the disk           disk_bytes_written()
    its promise        window_s() and period_s(): everything dirtied is written out (handed
                       to the disk) within window + period; a crash loses older data only
                       if the disk had not written it yet or the write failed (the crash
                       tests hold the policy to it, and say where older losses were)
    its own figures    report(): name -> number or text, shown by `vfslab run` and in the
                       run's JSON as "policy_report"
    seeing every store write_faults = True: pages dirtied through a mapping fault and are
                       listed (otherwise only the pmap knows; docs/extending.md)

Tunables are declared (`TUNABLES`), and `--set NAME.key=value`, TOML `[NAME]` tables and
sweep grids are checked against the declaration: type, range, and the key itself.
"""

from __future__ import annotations

import linecache
import sys
import weakref
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from vfslab.errors import InputError
from vfslab.failure import ApiMisuse
from vfslab.kern.buf import B_DELWRI
from vfslab.kern.notify import KernelObserver
from vfslab.kern.vnode_if import VOP_UPDATE
from vfslab.sim.callout import periodic
from vfslab.sim.context import Thread
from vfslab.tunable import Tunable

if TYPE_CHECKING:
    from vfslab.kern.buf import buf
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.uvm_page import vm_page
    from vfslab.kern.vnode import vnode

GEN = Generator[Any, Any, Any]


class WritebackPolicy(KernelObserver):
    """Subclass this; set `name` (the prefix of its `--set` keys) and `TUNABLES`."""

    name = "base"
    TUNABLES: tuple[Tunable, ...] = ()
    # True: the policy finds dirty pages on the kernel's dirty lists, so every store must be
    # seen there. Read faults then map pages read-only (UVM_OBJ_NEEDS_WRITEFAULT) and
    # `flush_pages` write-protects the pages it cleans, so that a later store through a
    # mapping faults and re-lists the page. False (2.0, the syncer): pages dirtied through a
    # writable mapping are seen only by pmap_clear_modify in putpages (docs/model.md).
    write_faults: bool = False
    _misuse: str | None = None        # see _watched

    def __init__(self, k: Kernel, options: dict[str, Any]) -> None:
        self.k = k
        self.m = k.m
        self.opts = self.parse_options(options)

    @classmethod
    def tunables(cls) -> dict[str, Tunable]:
        return {t.name: t for t in cls.TUNABLES}

    @classmethod
    def parse_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        decl = cls.tunables()
        out = {name: t.default for name, t in decl.items()}
        for key, val in options.items():
            t = decl.get(key)
            if t is None:
                raise InputError(f"{cls.name}: unknown option {key!r}; expected one of "
                                 f"{', '.join(sorted(decl)) or '(none)'}")
            out[key] = t.check(cls.name, val)
        cls.check_options(out)
        return out

    @classmethod
    def check_options(cls, opts: dict[str, Any]) -> None:
        """Constraints between tunables (raise InputError); each alone is checked already."""

    # ---- what the kernel asks of a policy -----------------------------------------------------
    def start(self) -> None:
        """Start the policy's daemons (at boot, once the root is mounted)."""

    def window_s(self) -> float:
        """The promised bound on the age of dirty data, in seconds: data is written out
        (handed to the disk) within it and one period (for loss reports)."""
        return 0.0

    def period_s(self) -> float:
        """How often the policy's daemon wakes: data dirtied just after a pass waits this
        long more than the window (a crash may lose up to window + period)."""
        return 1.0

    def report(self) -> dict[str, float | int | str]:
        """The policy's own figures at the end of a run (its passes, its estimates), by a
        name that says the unit (`..._mb`, `..._s`); {} by default."""
        return {}

    # ---- time and threads -------------------------------------------------------------------
    def now(self) -> int:
        """The emulated time, in ns."""
        return self.m.time()

    def spawn(self, name: str, body: GEN) -> None:
        """Start a kernel thread running the generator `body`."""
        self.m.spawn(name, body)

    def sleep(self, ns: int, wmesg: str = "policy") -> GEN:
        """Sleep (in a thread of the policy) for `ns`. Use with `yield from`."""
        return self._watched(self.m.tsleep(self, wmesg, max(1, int(ns))), "sleep")

    def callout(self, period_ns: int, fn: Callable[[], None], name: str = "") -> None:
        """Call `fn()` every `period_ns` from the clock interrupt (no sleeping in it)."""
        periodic(self.m, int(period_ns), lambda _: fn(), name=name or f"{self.name}-callout")

    def pass_done(self, kind: str, start: int) -> None:
        """Say that the running daemon finished a pass of kind `kind` begun at `start` (ns):
        a trace shows it on its writeback track. Costs nothing when nobody watches."""
        fns = self.k.notify.writeback_pass
        if fns:
            cur = self.m.cur
            who = cur.name if cur is not None else self.name
            for f in fns:
                f(who, kind, start, self.m.time())

    def current_thread(self) -> object | None:
        """The thread running now (a key for per-writer state), or None in an interrupt."""
        cur = self.m.cur
        return cur if isinstance(cur, Thread) else None

    # ---- what is dirty ----------------------------------------------------------------------
    def npages(self) -> int:
        """Page frames of the machine."""
        return int(self.k.uvm.npages)

    def nfree_pages(self) -> int:
        """Page frames on the free list (every other frame holds a file's page)."""
        return int(self.k.uvm.free)

    def nreserved_pages(self) -> int:
        """Free pages the kernel keeps for itself: the page daemon's target
        (uvmexp.freetarg), below which it reclaims."""
        return int(self.k.uvm.freetarg)

    def ndirty_pages(self) -> int:
        return int(self.k.uvm.ndirty)

    def ndirty_buffers(self) -> int:
        return int(self.k.bio.ndirty)

    def dirty_vnodes(self) -> list[vnode]:
        """Vnodes with dirty pages, in the order they got their first dirty page."""
        self.check_api_use()
        return [uobj.vp for uobj in self.k.uvm.dirty_objects]

    def dirty_pages(self, vp: vnode) -> list[vm_page]:
        """A vnode's dirty pages in the order they were dirtied (under its object lock)."""
        self.check_api_use()
        p = self.k.proto
        s = p.vi_lock(vp)
        out = list(vp.v_uobj.dirtyq)
        p.vi_unlock(vp, s)
        return out

    def dirty_buffers(self) -> list[buf]:
        """Every delayed-write buffer, oldest first (by b_dirtied_at)."""
        self.check_api_use()
        p = self.k.proto
        out: list[buf] = []
        for vp in self.k.vfs.all_vnodes:
            s = p.buflist_lock(vp)
            if vp.v_dirtyblkhd:
                out.extend(vp.v_dirtyblkhd)
            p.buflist_unlock(vp, s)
        out.sort(key=_dirtied_at)
        return out

    def disk_bytes_written(self) -> int:
        disk = self.k.disk
        return 0 if disk is None else int(disk.stats.bytes_written)

    # ---- writing ----------------------------------------------------------------------------
    def flush_pages(self, vp: vnode, pages: list[vm_page] | None = None, start: int = 0,
                    end: int = 0, sync: bool = False) -> Generator[Any, Any, int]:
        """VOP_PUTPAGES: write `pages` (or every dirty page in the byte range [start, end),
        end 0 meaning to the end), clustered into contiguous I/Os of up to 64 KiB;
        asynchronous unless `sync`. Returns 0 or an errno. Use with `yield from`."""
        return self._watched(self.k.genfs.putpages(vp, start, end, clean=True, sync=sync,
                                                   pages=pages), "flush_pages")

    def flush_buffer(self, bp: buf) -> bool:
        """Start an asynchronous write of a delayed-write buffer, if no one holds it busy
        (btrybusy + bawrite, as the syncer's lazy fsync does). True if it was started."""
        bio = self.k.bio
        if not bio.btrybusy(bp):
            return False
        if not bp.b_flags & B_DELWRI:
            bio.brelse(bp)
            return False
        bio.bawrite(bp)
        return True

    def flush_vnode_buffers(self, vp: vnode) -> GEN:
        """Start writes of all of a vnode's delayed-write buffers (vflushbuf, no wait). Use
        with `yield from`."""
        return self._watched(self.k.vfs.vflushbuf(vp, False), "flush_vnode_buffers")

    def update_inode(self, vp: vnode, since: int = -1) -> GEN:
        """After writing a vnode's pages, write its inode (VOP_UPDATE): its block becomes a
        dirty buffer that the policy's buffer pass writes in turn. With `since` (when the
        oldest of those pages was dirtied) the block is dated back to then: the data is
        reachable on disk only once the inode block holding its pointers is there, so the
        promise on the data's age holds only if the block is due when the data is. Use with
        `yield from`."""
        return self._watched(_update(vp, since), "update_inode")

    # ---- throttling -------------------------------------------------------------------------
    def pause(self, vp: vnode, ns: int, wmesg: str = "throttle") -> GEN:
        """Pause the writer that is in write_throttle (counted as throttled meanwhile). Use
        with `yield from`."""
        return self._watched(self._pause(vp, ns, wmesg), "pause")

    def _pause(self, vp: vnode, ns: int, wmesg: str) -> GEN:
        self.k.nthrottled += 1
        try:
            yield from self.m.tsleep(vp, wmesg, max(1, int(ns)))
        finally:
            self.k.nthrottled -= 1


    # ---- a generator method called without `yield from` ---------------------------------------
    def _watched(self, body: GEN, what: str) -> GEN:
        """`body`, as the policy's code gets it from the API method `what`. Called without
        `yield from`, a generator method does nothing and says nothing: a flush that writes
        nothing, a daemon loop that never sleeps (and hangs the run). So if the generator is
        dropped without having run, the policy's next call of this API raises ApiMisuse
        naming the line that forgot, and so does the end of the run."""
        self.check_api_use()
        f = sys._getframe(2)                   # the policy's line: past the API method's
        where = (f.f_code.co_filename, f.f_lineno, f.f_code.co_name)
        started = [False]

        def run() -> GEN:
            started[0] = True
            return (yield from body)

        g = run()
        weakref.finalize(g, self._dropped, started, what, where)
        return g

    def _dropped(self, started: list[bool], what: str, where: tuple[str, int, str]) -> None:
        if started[0] or self._misuse is not None:
            return
        file, line, func = where
        src = linecache.getline(file, line).strip()
        self._misuse = (f"{what}() called without `yield from` at {file}:{line} in {func}"
                        + (f" ({src})" if src else "") + f": it returns a generator, which was "
                        f"dropped without running, so it did nothing; write `yield from "
                        f"self.{what}(...)`")

    def check_api_use(self) -> None:
        """Raise ApiMisuse if a generator method of this API was called without `yield from`
        (the runner calls it at the end of a run too)."""
        if self._misuse is not None:
            raise ApiMisuse(self._misuse, type(self).__module__)


def _update(vp: vnode, since: int) -> GEN:
    if vp.v_data is None:
        return
    yield from VOP_UPDATE(vp, 0, since)


def _dirtied_at(bp: buf) -> int:
    return bp.b_dirtied_at


__all__ = ["Tunable", "WritebackPolicy"]
