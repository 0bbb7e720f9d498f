"""Locks of NetBSD 2.0 (sys/kern/kern_lock.c, sys/sys/lock.h): simple_lock(9) spin locks and
lockmgr(9) sleeping locks.

lockmgr follows kern_lock.c 1.77 (2004-05-18, read in full): a shared request waits while the
lock is held exclusively *or an exclusive request is waiting* (LK_WANT_EXCL: writers are
preferred, so a thread that already holds the lock shared and asks again deadlocks behind a
queued writer); an exclusive request first takes LK_WANT_EXCL, then waits for the sharers to
drain; a shared request by the exclusive holder downgrades the lock; LK_DRAIN waits until the
lock is free with no one waiting, after which the lock may only be released (and is then
decommissioned until lockinit). LK_UPGRADE and LK_EXCLUPGRADE are not modelled (2.0's
storage path does not use them).

simple_lock follows LOCKDEBUG: taking a lock the same CPU already holds is a panic, "locking
against myself", never a silent hang. Each lock belongs to a class named by its role (every
vnode's v_interlock is class "v_interlock"); the validator reasons about classes.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

from vfslab.sim.context import SSLEEP, Context, Thread
from vfslab.sim.engine import Engine
from vfslab.sim.panic import Deadlock, Panic
from vfslab.sim.stack import Frame, call_chain, interrupted_chain, thread_chain

# lockmgr flags (sys/sys/lock.h)
LK_SHARED = 0x01
LK_EXCLUSIVE = 0x02
LK_RELEASE = 0x06
LK_DRAIN = 0x07
LK_TYPE_MASK = 0x0F
LK_NOWAIT = 0x10
LK_SLEEPFAIL = 0x20
LK_INTERLOCK = 0x10000
LK_CANRECURSE = 0x40
LK_REENABLE = 0x80        # (an external flag) a drained lock lives again after its release
                          # (0x80 in sys/sys/lock.h; it was 0x08 here, inside LK_TYPE_MASK,
                          # until a failed unmount first used it: found by the error tests)
LK_RETRY = 0x20000        # vn_lock: retry after waiting out a VXLOCK (not lockmgr's)
EDEADLK = 11

EBUSY = 16
ENOLCK = 77

# lockdep's nesting annotation (spin_lock_nested, mutex_lock_nested: Documentation/locking/
# lockdep-design.rst, "Exception: Nested data dependencies"), not a 2.0 flag: an acquisition
# that 2.0 makes while it holds another lock of the same class, in an order its code defines
# (a directory before the vnode found in it), says which role it takes the lock in, and the
# validator orders (class, role) pairs instead of the class alone. The bits ride in the
# flags (LK_NESTED(n)) so that they pass through vn_lock and VOP_LOCK untouched; lockmgr
# and simple_lock_nested give them to the validator and otherwise ignore them.
LK_SUBCLASS_SHIFT = 24
LK_SUBCLASS_MASK = 0xF << LK_SUBCLASS_SHIFT
_SUBCLASS_NAMES: dict[int, str] = {}


def declare_subclass(n: int, name: str) -> int:
    """Name nesting subclass `n` (1-15) and return its flag bits, LK_NESTED(n). A subclass
    is declared once, by the module whose locks take it (kern/vnode.py's VNL_*)."""
    if not 1 <= n <= 15:
        raise ValueError(f"lock subclass {n}: must be 1 to 15")
    if _SUBCLASS_NAMES.get(n, name) != name:
        raise ValueError(f"lock subclass {n} is already {_SUBCLASS_NAMES[n]!r}")
    _SUBCLASS_NAMES[n] = name
    return LK_NESTED(n)


def LK_NESTED(n: int) -> int:  # noqa: N802  (a flag, as lockdep's SINGLE_DEPTH_NESTING)
    return n << LK_SUBCLASS_SHIFT


def subclass_name(flags: int) -> str:
    """The declared name of the subclass in `flags` ("" for none)."""
    n = (flags & LK_SUBCLASS_MASK) >> LK_SUBCLASS_SHIFT
    if not n:
        return ""
    try:
        return _SUBCLASS_NAMES[n]
    except KeyError:
        raise ValueError(f"lock subclass {n} was never declared (declare_subclass)") from None


class simplelock:  # noqa: N801  (NetBSD's struct name)
    """struct simplelock: a spin lock; `holder` is the context holding it."""

    __slots__ = ("cls", "holder", "where", "kind")

    def __init__(self, cls: str) -> None:
        self.cls = cls
        self.holder: Context | None = None
        self.where: list[str] | None = None   # chain at acquisition, kept when checking
        self.kind = "spin"

    def __repr__(self) -> str:
        return f"<simplelock {self.cls}>"


class lock:  # noqa: N801  (NetBSD's struct lock)
    """struct lock: a lockmgr sleeping lock, shared or exclusive."""

    __slots__ = ("cls", "lk_interlock", "lk_sharecount", "lk_exclusivecount", "lk_holder",
                 "lk_waitcount", "lk_wmesg", "kind", "lk_flags", "holder", "sharers",
                 "lk_want_excl", "lk_draining", "lk_drained", "lk_waitdrain")
    lk_sharecount: int
    lk_exclusivecount: int
    lk_holder: Thread | None
    lk_waitcount: int
    lk_flags: int
    holder: Context | None
    sharers: list[Thread]
    lk_want_excl: Thread | None
    lk_draining: bool
    lk_drained: bool
    lk_waitdrain: bool

    def __init__(self, cls: str, wmesg: str, flags: int = 0) -> None:
        self.cls = cls
        self.lk_interlock = simplelock(f"{cls}.lk_interlock")
        self.lk_wmesg = wmesg
        self.kind = "sleep"
        lockinit(self, flags)

    def __repr__(self) -> str:
        return f"<lock {self.cls}>"

    def drain_chan(self) -> tuple[lock, str]:
        """What a drainer sleeps on (2.0: &lkp->lk_flags, not the lock itself)."""
        return (self, "lk_flags")

    def busy(self) -> bool:
        """Held, wanted or waited for: what LK_DRAIN waits on."""
        return bool(self.lk_exclusivecount or self.lk_sharecount or
                    self.lk_want_excl is not None or self.lk_waitcount)


def lockinit(lkp: lock, flags: int = 0) -> None:
    """lockinit(9): the lock unheld, unwanted and usable again (getnewvnode re-inits a
    recycled vnode's lock this way)."""
    lkp.lk_sharecount = 0
    lkp.lk_exclusivecount = 0
    lkp.lk_holder = None
    lkp.lk_waitcount = 0
    lkp.lk_flags = flags
    lkp.holder = None          # for the validator: the exclusive holder
    lkp.sharers = []
    lkp.lk_want_excl = None    # LK_WANT_EXCL: the thread whose exclusive request waits
    lkp.lk_draining = False    # LK_DRAINING: drained and held; only a release may follow
    lkp.lk_drained = False     # LK_DRAINED: decommissioned
    lkp.lk_waitdrain = False   # LK_WAITDRAIN: a drainer sleeps on drain_chan()


def simple_lock_init(cls: str) -> simplelock:
    return simplelock(cls)


# the lock primitives a chain of an acquisition ends in
_PRIMITIVES = frozenset({"simple_lock", "simple_lock_try", "lockmgr"})


def naming_lock(chain: list[str], lock: str) -> list[str]:
    """`chain` (of an acquisition of `lock`) with its last frame, when a lock primitive,
    named with the lock it takes (`simple_lock(v_interlock)`): a bare `simple_lock` at the
    end of a report's chain does not say which lock."""
    if chain and chain[-1] in _PRIMITIVES:
        last = chain[-1]
        named = f"{last}({lock})"
        chain[-1] = last.renamed(named) if isinstance(last, Frame) else named
    return chain


def _on_this_cpu(h: Context, cur: Context) -> bool:
    """Is holder `h` on the same CPU as `cur`, beneath it (interrupted) or itself?"""
    if h is cur:
        return True
    cpu = cur.cpu
    if h.intr:
        return h.cpu is cpu
    return cpu.running is h


class LockOps:
    """simple_lock(9) and lockmgr(9) bound to one machine's engine."""

    def __init__(self, m: Engine) -> None:
        self.m = m

    # ---- simple_lock ----------------------------------------------------------------------
    def simple_lock(self, lk: simplelock) -> None:
        m = self.m
        m.ipoint()
        cur: Context = m.cur  # type: ignore[assignment]
        cur.cpu.t += m.costs.lock
        h = lk.holder
        if h is not None:
            self._contended(lk, cur, h)
        lk.holder = cur
        cur.held.append(lk)
        cur.nspin += 1
        m.nspin_held += 1
        if cur.intr:
            m.irq_lock_keys.add(lk.cls)      # for irq_stress_mode=locked
        if m.checker is not None:
            m.checker.on_lock(lk, cur, False)
        if m.tracer is not None:
            m.tracer.spin_held(lk, lk.cls, cur, cur.cpu.t, sys._getframe(1).f_code.co_name)

    def simple_lock_nested(self, lk: simplelock, subclass: int) -> None:
        """spin_lock_nested: simple_lock(lk), annotated as taken in the role LK_NESTED(n)
        `subclass` names (see declare_subclass); the same lock as simple_lock otherwise."""
        name = subclass_name(subclass)
        cur: Context = self.m.cur  # type: ignore[assignment]
        if name:
            cur.nested[lk] = name
        self.simple_lock(lk)

    def lock_set_subclass(self, lk: simplelock | lock, subclass: int) -> None:
        """lockdep's lock_set_subclass: the held lock `lk` is from now on in the role
        `subclass` names (0: none). Lock coupling needs it: the child a lookup locked under
        its directory becomes, once the directory is released, the directory of the next
        step. An annotation only; a lock the caller does not hold is left alone."""
        cur: Context = self.m.cur  # type: ignore[assignment]
        if lk not in cur.held:
            return
        name = subclass_name(subclass)
        if name:
            cur.nested[lk] = name
        else:
            cur.nested.pop(lk, None)

    def _contended(self, lk: simplelock, cur: Context, h: Context) -> None:
        m = self.m
        if _on_this_cpu(h, cur):
            stacks = [naming_lock(call_chain(2), lk.cls)]
            if h is not cur:
                # the holder is the code this interrupt interrupted: its frames are beneath
                depth = 1
                ctx = cur
                while ctx is not h and getattr(ctx, "outer", None) is not None:
                    ctx = ctx.outer  # type: ignore[attr-defined]
                    if ctx is not h:
                        depth += 1
                held_chain = interrupted_chain(depth)
                if held_chain:
                    stacks.append(held_chain)
            if m.checker is not None:
                m.checker.on_self_deadlock(lk, cur, h, stacks)
            who = cur.describe() if cur.intr else f"{cur.describe()} on cpu{cur.cpu.index}"
            raise Deadlock(
                f"simple_lock: locking against myself: {lk.cls} held by {h.describe()}, "
                f"wanted by {who}", cur.describe(), stacks, m.time())
        # Held on another CPU. In a correct kernel that holder is running and would release
        # it shortly; the engine never interleaves a spinner with a running holder (see
        # engine), so the holder is switched out holding a spin lock and cannot release it.
        stacks = [naming_lock(call_chain(2), lk.cls)]
        if isinstance(h, Thread):
            stacks.append(thread_chain(h))
        if m.checker is not None:
            m.checker.on_spin_deadlock(lk, cur, h, stacks)
        raise Deadlock(
            f"simple_lock: {cur.describe()} spins forever on {lk.cls}, held by "
            f"{h.describe()}, which is not running", cur.describe(), stacks, m.time())

    def simple_lock_try(self, lk: simplelock) -> bool:
        m = self.m
        m.ipoint()
        cur: Context = m.cur  # type: ignore[assignment]
        cur.cpu.t += m.costs.lock
        if lk.holder is not None:
            return False
        lk.holder = cur
        cur.held.append(lk)
        cur.nspin += 1
        m.nspin_held += 1
        if m.checker is not None:
            m.checker.on_lock(lk, cur, True)
        if m.tracer is not None:
            m.tracer.spin_held(lk, lk.cls, cur, cur.cpu.t, sys._getframe(1).f_code.co_name)
        return True

    def simple_unlock(self, lk: simplelock) -> None:
        m = self.m
        cur: Context = m.cur  # type: ignore[assignment]
        if lk.holder is not cur:
            self._bad_unlock(lk, cur)
            return
        lk.holder = None
        lk.where = None
        held = cur.held
        if held[-1] is lk:
            held.pop()
        else:
            held.remove(lk)
        cur.nspin -= 1
        m.nspin_held -= 1
        cur.cpu.t += m.costs.lock
        if cur.nested:
            cur.nested.pop(lk, None)
        if m.checker is not None:
            m.checker.on_unlock(lk, cur)
        if m.tracer is not None:
            m.tracer.spin_released(lk, cur.cpu.t)
        m.ipoint()

    def _bad_unlock(self, lk: simplelock | lock, cur: Context) -> None:
        m = self.m
        h = lk.holder
        why = "not held" if h is None else f"held by {h.describe()}"
        if m.checker is not None:
            m.checker.on_bad_unlock(lk, cur, why)
            return
        raise Panic(f"simple_unlock: {lk.cls}: {why}, released by {cur.describe()}",
                    cur.describe(), [call_chain(3)], m.time())

    def simple_lock_held(self, lk: simplelock) -> bool:
        return lk.holder is self.m.cur

    # ---- ltsleep: sleep releasing an interlock atomically ---------------------------------------
    def ltsleep(self, ident: object, wmesg: str, timo: int,
                interlock: simplelock | None, relock: bool = True) -> Generator[None, Any, int]:
        """ltsleep(9): go on the sleep queue, then drop `interlock`, so no wakeup is lost."""
        wait = self.m.tsleep(ident, wmesg, timo)
        if interlock is not None:
            self.simple_unlock(interlock)
        rv: int = yield from wait
        if interlock is not None and relock:
            self.simple_lock(interlock)
        return rv

    # ---- lockmgr ----------------------------------------------------------------------------
    def lockmgr(self, lkp: lock, flags: int, interlkp: simplelock | None = None
                ) -> Generator[None, Any, int]:
        """lockmgr(9): shared/exclusive sleeping lock; returns 0, or EBUSY with LK_NOWAIT. Use
        with `yield from`. The context is checked when it is called, as tsleep's is: a
        handler that forgets `yield from` panics instead of silently taking nothing."""
        m = self.m
        td = m.cur
        if td is None or td.intr:
            where = td.describe() if td is not None else "no context"
            raise Panic(f"lockmgr({lkp.cls}) from {where}: acquiring sleep lock from "
                        "interrupt context", where, [call_chain(2)], m.time())
        return lockmgr(self, lkp, flags, interlkp, td)  # type: ignore[arg-type]

    def _wait(self, lkp: lock, td: Thread) -> Generator[None, Any, None]:
        """acquire()'s sleep: counted in lk_waitcount (LK_WAIT_NONZERO), the interlock
        released while asleep."""
        self._check_wait_cycle(lkp, td)
        lkp.lk_waitcount += 1
        yield from self.ltsleep(lkp, lkp.lk_wmesg, 0, lkp.lk_interlock)
        lkp.lk_waitcount -= 1

    @staticmethod
    def _blockers(lk: lock, waiter: Thread) -> list[Thread]:
        """Whom `waiter`, asleep on `lk`, waits for: the exclusive holder; else, for any
        request but the writer's own, the writer whose LK_WANT_EXCL is set; else (the
        writer itself) the sharers."""
        if lk.lk_holder is not None:
            return [lk.lk_holder]
        if lk.lk_want_excl is not None and lk.lk_want_excl is not waiter:
            return [lk.lk_want_excl]     # which itself waits for the sharers
        return list(lk.sharers)

    def _check_wait_cycle(self, lkp: lock, td: Thread) -> None:
        """A cycle of sleeping waiters is a real deadlock: stop the run and show each party."""
        seen: list[Thread] = []
        lk: Any = lkp
        waiter = td
        while isinstance(lk, lock):
            nxt = None
            for o in self._blockers(lk, waiter):
                if o is td:
                    parties = [td, *seen]
                    stacks = [call_chain(3)] + [thread_chain(p) for p in seen]
                    if self.m.checker is not None:
                        self.m.checker.on_sleep_deadlock(lkp, parties, stacks)
                    raise Deadlock(
                        "lockmgr: deadlock: " + " -> ".join(
                            f"{p.describe()} waits for {getattr(p.wchan, 'cls', lkp.cls)}"
                            for p in parties), td.describe(), stacks, self.m.time())
                if o.state == SSLEEP and isinstance(o.wchan, lock) and o not in seen:
                    nxt = o
            if nxt is None:
                return
            seen.append(nxt)
            waiter = nxt
            lk = nxt.wchan

    def _release(self, lkp: lock, td: Thread) -> int:
        m = self.m
        if lkp.lk_exclusivecount:
            if lkp.lk_holder is not td:
                self.simple_unlock(lkp.lk_interlock)
                self._bad_unlock(lkp, td)
                return ENOLCK
            lkp.lk_exclusivecount -= 1
            if lkp.lk_exclusivecount == 0:
                lkp.lk_holder = None
                lkp.holder = None
        elif lkp.lk_sharecount:
            if td not in lkp.sharers:
                self.simple_unlock(lkp.lk_interlock)
                self._bad_unlock(lkp, td)
                return ENOLCK
            lkp.lk_sharecount -= 1
            lkp.sharers.remove(td)
        else:
            self.simple_unlock(lkp.lk_interlock)
            self._bad_unlock(lkp, td)
            return ENOLCK
        if lkp in td.held:
            td.held.remove(lkp)
        if td.nested and lkp not in td.held:
            td.nested.pop(lkp, None)
        if m.checker is not None:
            m.checker.on_unlock(lkp, td)
        if m.tracer is not None:
            m.tracer.lock_released(lkp, td, td.cpu.t)
        if lkp.lk_waitcount:              # WAKEUP_WAITER
            m.wakeup(lkp)
        self._done(lkp)
        return 0

    def _done(self, lkp: lock) -> None:
        """lockmgr's common exit: wake a drainer once the lock is free and unwanted, then
        release the interlock."""
        if lkp.lk_waitdrain and not lkp.busy():
            lkp.lk_waitdrain = False
            self.m.wakeup(lkp.drain_chan())
        self.simple_unlock(lkp.lk_interlock)

    def lockstatus(self, lkp: lock) -> str:
        """LK_EXCLUSIVE/LK_SHARED/none as lockstatus(9), as a word."""
        if lkp.lk_exclusivecount:
            return "exclusive-self" if lkp.lk_holder is self.m.cur else "exclusive-other"
        return "shared" if lkp.lk_sharecount else "unlocked"


def lockmgr(L: LockOps, lkp: lock, flags: int, interlkp: simplelock | None, td: Thread
            ) -> Generator[None, Any, int]:
    """lockmgr's body (kern_lock.c 1.77; named so in call chains), run by LockOps.lockmgr's
    caller."""
    m = L.m
    td.cpu.t += m.costs.lockmgr
    L.simple_lock(lkp.lk_interlock)
    if flags & LK_INTERLOCK and interlkp is not None:
        L.simple_unlock(interlkp)
    op = flags & LK_TYPE_MASK
    nowait = flags & LK_NOWAIT
    if lkp.lk_draining or lkp.lk_drained:
        # DIAGNOSTIC's checks on a drained lock: only its holder's one release
        if lkp.lk_drained or op != LK_RELEASE or lkp.lk_holder is not td:
            L.simple_unlock(lkp.lk_interlock)
            what = ("using decommissioned lock" if lkp.lk_drained
                    else "non-release on draining lock")
            raise Panic(f"lockmgr: {what}: {lkp.cls}", td.describe(), [call_chain(2)],
                        m.time())
        lkp.lk_draining = False
        if not flags & LK_REENABLE:
            lkp.lk_drained = True
    if op == LK_RELEASE:
        return L._release(lkp, td)
    if op == LK_SHARED:
        if lkp.lk_holder is not td:
            # wait for exclusive locks and for exclusive requests (writers first)
            if nowait and (lkp.lk_exclusivecount or lkp.lk_want_excl is not None):
                L.simple_unlock(lkp.lk_interlock)
                return EBUSY
            while lkp.lk_exclusivecount or lkp.lk_want_excl is not None:
                yield from L._wait(lkp, td)
            lkp.lk_sharecount += 1
            lkp.sharers.append(td)
        else:
            # "We hold an exclusive lock, so downgrade it to shared."
            n = lkp.lk_exclusivecount + 1
            lkp.lk_sharecount += n
            lkp.sharers.extend([td] * n)
            lkp.lk_exclusivecount = 0
            lkp.lk_holder = None
            lkp.holder = None
            if lkp.lk_waitcount:
                m.wakeup(lkp)
    elif op == LK_EXCLUSIVE:
        if lkp.lk_holder is td:
            if not (flags & LK_CANRECURSE or lkp.lk_flags & LK_CANRECURSE):
                L.simple_unlock(lkp.lk_interlock)
                raise Panic(f"lockmgr: locking against myself: {lkp.cls}", td.describe(),
                            [call_chain(2)], m.time())
            lkp.lk_exclusivecount += 1
        else:
            if nowait and (lkp.lk_exclusivecount or lkp.lk_want_excl is not None
                           or lkp.lk_sharecount):
                L.simple_unlock(lkp.lk_interlock)
                return EBUSY
            # take LK_WANT_EXCL (no other exclusive holder or request), then wait for the
            # sharers to finish: new shared requests wait behind it meanwhile
            while lkp.lk_exclusivecount or lkp.lk_want_excl is not None:
                yield from L._wait(lkp, td)
            lkp.lk_want_excl = td
            while lkp.lk_sharecount:
                yield from L._wait(lkp, td)
            lkp.lk_want_excl = None
            lkp.lk_exclusivecount = 1
            lkp.lk_holder = td
            lkp.holder = td
    elif op == LK_DRAIN:
        if lkp.lk_holder is td:
            L.simple_unlock(lkp.lk_interlock)
            raise Panic(f"lockmgr: draining against myself: {lkp.cls}", td.describe(),
                        [call_chain(2)], m.time())
        if nowait and lkp.busy():
            L.simple_unlock(lkp.lk_interlock)
            return EBUSY
        while lkp.busy():
            # acquire(drain): not counted as a waiter; asleep on &lk_flags
            lkp.lk_waitdrain = True
            yield from L.ltsleep(lkp.drain_chan(), lkp.lk_wmesg, 0, lkp.lk_interlock)
        lkp.lk_draining = True
        lkp.lk_exclusivecount = 1
        lkp.lk_holder = td
        lkp.holder = td
    else:
        L.simple_unlock(lkp.lk_interlock)
        raise Panic(f"lockmgr: unknown operation {op:#x}", td.describe(),
                    [call_chain(2)], m.time())
    L._done(lkp)
    td.held.append(lkp)
    if flags & LK_SUBCLASS_MASK:
        td.nested[lkp] = subclass_name(flags)
    if m.checker is not None:
        m.checker.on_lock(lkp, td, bool(nowait))
    if m.tracer is not None:
        m.tracer.lock_held(lkp.cls, lkp, td, td.cpu.t, sys._getframe(1).f_code.co_name)
    return 0
