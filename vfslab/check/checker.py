"""The lock and IPL protocol validator: lockdep's and WITNESS's rules on lock classes and
interrupt levels, guard checks on declared fields, Eraser on undeclared shared fields, and the
real deadlocks and races of the run.

The engine and the lock code call the `on_*` hooks; field accesses reach `access` through the
descriptors `install` puts on the kernel's structures. Everything that is cheap to know is
checked on every event; what costs (call chains, graph searches) is done once per new fact.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

from vfslab.check.fields import FieldDescriptor, install_descriptors, uninstall_descriptors
from vfslab.check.findings import KINDS, Finding
from vfslab.kern.guards import Guard, StructGuards
from vfslab.kern.lock import naming_lock
from vfslab.sim.context import Context, Thread
from vfslab.sim.ipl import IPL_BIO, IPL_NONE, SPL_NAMES, ipl_name
from vfslab.sim.panic import Deadlock, Panic
from vfslab.sim.stack import call_chain, thread_chain

# Eraser states
VIRGIN, EXCLUSIVE, SHARED, SHARED_MODIFIED = range(4)


def _where(ctx: Context) -> str:
    if ctx.intr:
        return f"interrupt {ctx.name} at {ipl_name(ctx.level)} on cpu{ctx.cpu.index}"
    return f"thread {ctx.name} at {ipl_name(ctx.cpu.ipl)} on cpu{ctx.cpu.index}"


class ClassInfo:
    """What is known about one lock class."""

    __slots__ = ("name", "kind", "in_irq", "enabled", "states")

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        # level -> (chain, context) of the first acquisition in an interrupt at that level
        self.in_irq: dict[int, tuple[list[str], str]] = {}
        # the lowest CPU level it was taken at, with where: unsafe for every level above
        self.enabled: tuple[int, list[str], str] | None = None
        self.states: set[tuple[int, int]] = set()


class Checker:
    """One run's validator. `findings()` is the result."""

    def __init__(self, m: Any) -> None:
        self.m = m
        # Lock classes are keyed by their name and, for an acquisition annotated with a
        # nesting subclass (LK_NESTED, simple_lock_nested: lockdep's), "name/subclass": two
        # instances of one key held at once are an AA report, whatever the class (vnode
        # locks too: 2.0's orders among them are declared where it takes them).
        self.classes: dict[str, ClassInfo] = {}
        self.edges: dict[tuple[str, str], list[str]] = {}     # (A, B) -> chain of first A->B
        self.succ: dict[str, set[str]] = {}
        self._findings: dict[tuple[Any, ...], Finding] = {}
        self._sites: dict[tuple[Any, ...], Finding] = {}
        self._reported: set[tuple[Any, ...]] = set()
        self.global_locks: dict[str, Any] = {}
        self.installed: list[FieldDescriptor] = []
        self.spl_only_seen: set[str] = set()
        self.eraser: dict[tuple[int, str], list[Any]] = {}
        self.last_section: dict[tuple[int, str], tuple[int, int, bool, Any, list[str]]] = {}
        self.epoch: list[int] = [0] * len(m.cpus)
        self.naccess = 0
        self.nlock = 0

    # ---- installation ---------------------------------------------------------------------
    def install(self, structs: list[StructGuards], global_locks: dict[str, Any]) -> None:
        """Put checking descriptors on the guarded and tracked fields of the structures."""
        self.global_locks = dict(global_locks)
        self.installed = install_descriptors(self, structs)

    def uninstall(self) -> None:
        uninstall_descriptors(self.installed)
        self.installed = []

    # ---- findings ---------------------------------------------------------------------------
    def findings(self) -> list[Finding]:
        return sorted(self._findings.values(), key=lambda f: (f.first_seen_ns, f.kind, f.subject))

    def _add(self, kind: str, subject: str, ctx_text: str, stacks: list[list[str]],
             explanation: str = "", scenario: list[str] | None = None,
             details: list[str] | None = None) -> Finding:
        f = Finding(kind, subject, ctx_text, stacks, self.m.time(),
                    explanation=explanation or KINDS.get(kind, ""),
                    scenario=scenario or [], details=details or [])
        key = f.key()
        old = self._findings.get(key)
        if old is not None:
            old.count += 1
            return old
        self._findings[key] = f
        return f

    def _site_key(self, kind: str, subject: str, ctx: Context) -> tuple[Any, ...]:
        """A cheap identity of the call site (the innermost frames and the kind of context)
        for repeated events."""
        f: Any = sys._getframe(3)
        codes: list[Any] = []
        while f is not None and len(codes) < 6:
            codes.append(f.f_code)
            f = f.f_back
        return (kind, subject, ctx.level if ctx.intr else -1, *codes)

    def _report_at_site(self, kind: str, subject: str, ctx: Context, explanation: str,
                        scenario: list[str], details: list[str] | None = None) -> None:
        site = self._site_key(kind, subject, ctx)
        known = self._sites.get(site)
        if known is not None:
            known.count += 1
            return
        self._sites[site] = self._add(kind, subject, _where(ctx),
                                      [naming_lock(call_chain(3), subject)],
                                      explanation, scenario, details)

    # ---- locks ------------------------------------------------------------------------------
    @staticmethod
    def key(lk: Any, ctx: Context) -> str:
        """The class `lk` is held in by `ctx`: its name, with the nesting subclass it was
        taken with."""
        nested = ctx.nested
        if nested:
            sub = nested.get(lk)
            if sub is not None:
                return f"{lk.cls}/{sub}"
        return str(lk.cls)

    def _class(self, lk: Any, ctx: Context) -> ClassInfo:
        name = self.key(lk, ctx)
        ci = self.classes.get(name)
        if ci is None:
            ci = self.classes[name] = ClassInfo(name, lk.kind)
        return ci

    def on_lock(self, lk: Any, ctx: Context, trylock: bool) -> None:
        self.nlock += 1
        ci = self._class(lk, ctx)
        if ci.kind == "sleep" and not trylock:
            self._sleeping_lock_checks(lk, ctx)
        ipl = ctx.cpu.ipl
        state = (ctx.level if ctx.intr else -1, ipl)
        if state not in ci.states:
            ci.states.add(state)
            self._new_usage(ci, ctx, ipl)
        held = ctx.held
        if len(held) > 1 and not trylock:
            name = ci.name
            key = self.key
            for h in held[:-1]:
                if h is lk:
                    continue
                a = key(h, ctx)
                if a == name:
                    self._report_at_site(
                        "recursive-lock", name, ctx,
                        f"two {name} locks held at once with no nesting order declared "
                        "(LK_NESTED): possible AA deadlock between two instances",
                        [f"  lock({name} #1);", f"  lock({name} #2);"])
                    continue
                if (a, name) not in self.edges:
                    self._new_edge(a, name, ctx)

    def _sleeping_lock_checks(self, lk: Any, ctx: Context) -> None:
        """At the acquisition, whether or not it slept (lockdep and WITNESS report both
        there): (1) a shared hold taken again by its holder, which deadlocks as soon as a
        writer queues between the two (kern_lock.c's LK_WANT_EXCL); (2) a sleeping lock
        taken with a spin lock held. The interlock handed over with LK_INTERLOCK is
        released by lockmgr before it could sleep, so it is not held here."""
        name = lk.cls
        if getattr(lk, "sharers", None) and lk.sharers.count(ctx) > 1 \
                and lk.lk_exclusivecount == 0:
            self._report_at_site(
                "recursive-shared-lock", name, ctx,
                f"{name} is taken shared by {ctx.describe()}, which already holds it shared: "
                "if another thread asks for it exclusively in between, its LK_WANT_EXCL "
                "holds the second request off while it waits for the first to be released",
                ["       THREAD A                 THREAD B",
                 "       --------                 --------",
                 f"  lock_shared({name});",
                 f"                                lock_exclusive({name});",
                 "                                <waits for A's share>",
                 f"  lock_shared({name});", "  <waits behind B>", " *** DEADLOCK ***"])
        spins = [h.cls for h in ctx.held if getattr(h, "kind", "") == "spin"]
        if spins:
            self._report_at_site(
                "sleeping-lock-under-spinlock", name, ctx,
                f"{name} (a sleeping lock) is requested with {', '.join(spins)} held: had it "
                "been busy, the thread would have slept holding a spin lock",
                [f"  spin_lock({spins[-1]});", f"  lockmgr({name});   <may sleep>"])

    def _new_usage(self, ci: ClassInfo, ctx: Context, ipl: int) -> None:
        if ci.kind != "spin":
            return
        chain = naming_lock(call_chain(3), ci.name)
        where = _where(ctx)
        changed = False
        if ctx.intr and ctx.level not in ci.in_irq:
            ci.in_irq[ctx.level] = (chain, where)
            changed = True
        if ci.enabled is None or ipl < ci.enabled[0]:
            ci.enabled = (ipl, chain, where)
            changed = True
        if changed:
            self._check_irq(ci.name)

    def _new_edge(self, a: str, b: str, ctx: Context) -> None:
        chain = naming_lock(call_chain(3), b)
        self.edges[(a, b)] = chain
        self.succ.setdefault(a, set()).add(b)
        path = self._path(b, a)
        if path is not None:
            cycle = [a, *path]       # a -> b -> ... -> a
            edges = list(zip(cycle, cycle[1:], strict=False))
            stacks = [self.edges[e] for e in edges]
            lines = ["       CPU0                    CPU1", "       ----                    ----"]
            lines.append(f"  lock({b});")
            lines.append(f"                               lock({a});")
            lines.append(f"                               lock({b});")
            lines.append(f"  lock({a});")
            lines.append(" *** DEADLOCK ***")
            self._add("lock-order-cycle", " -> ".join(cycle), _where(ctx), stacks,
                      f"{a} is taken before {b} here, and {b} before {a} elsewhere "
                      f"(chain {' -> '.join(cycle)})", lines,
                      [f"{x} -> {y}" for x, y in edges])
        self._check_irq(a)
        self._check_irq(b)

    def _path(self, src: str, dst: str) -> list[str] | None:
        """A path src -> ... -> dst in the order graph (BFS), or None."""
        if src == dst:
            return [src]
        prev: dict[str, str] = {src: src}
        q = deque([src])
        while q:
            x = q.popleft()
            for y in self.succ.get(x, ()):
                if y in prev:
                    continue
                prev[y] = x
                if y == dst:
                    out = [y]
                    while out[-1] != src:
                        out.append(prev[out[-1]])
                    return out[::-1]
                q.append(y)
        return None

    def _check_irq(self, name: str) -> None:
        """lockdep's irq-safe -> irq-unsafe rule around class `name`: a class taken in an
        interrupt at L must not be taken (or reach, through the order graph, a class taken)
        with the CPU below L."""
        # classes that can reach `name` (including itself) and that `name` can reach
        back = self._reach(name, reverse=True)
        fwd = self._reach(name, reverse=False)
        for s in back:
            si = self.classes.get(s)
            if si is None or not si.in_irq:
                continue
            for u in fwd | ({name} if s == name else set()):
                ui = self.classes.get(u)
                if ui is None or ui.enabled is None or ui.kind != "spin":
                    continue
                for level, (ichain, iwhere) in si.in_irq.items():
                    if ui.enabled[0] >= level:
                        continue
                    key = ("irq", s, u, level)
                    if key in self._reported:
                        continue
                    self._reported.add(key)
                    self._irq_finding(s, u, level, ichain, iwhere, ui)

    def _reach(self, name: str, reverse: bool) -> set[str]:
        seen = {name}
        q = deque([name])
        while q:
            x = q.popleft()
            nxt = ([a for (a, b) in self.edges if b == x] if reverse
                   else list(self.succ.get(x, ())))
            for y in nxt:
                if y not in seen:
                    seen.add(y)
                    q.append(y)
        return seen

    def _irq_finding(self, safe: str, unsafe: str, level: int, ichain: list[str],
                     iwhere: str, ui: ClassInfo) -> None:
        assert ui.enabled is not None
        eipl, echain, ewhere = ui.enabled
        lvl = ipl_name(level)
        spl = SPL_NAMES.get(level, lvl)
        if safe == unsafe:
            expl = (f"{unsafe} is taken in an interrupt at {lvl} ({iwhere}) and elsewhere "
                    f"with the CPU at {ipl_name(eipl)} ({ewhere}), below {lvl}: that "
                    f"interrupt can arrive while it is held on the same CPU")
            scen = ["       CPU0", "       ----", f"  lock({unsafe});",
                    f"  <Interrupt {lvl}>", f"    lock({unsafe});", " *** DEADLOCK ***"]
            stacks = [echain, ichain]
            subject = unsafe
        else:
            path = self._path(safe, unsafe) or [safe, unsafe]
            expl = (f"{safe} is taken in an interrupt at {lvl} ({iwhere}); with it held "
                    f"{unsafe} is taken ({' -> '.join(path)}); and {unsafe} is taken "
                    f"elsewhere with the CPU at {ipl_name(eipl)} ({ewhere}), below {lvl}")
            scen = ["       CPU0                    CPU1", "       ----                    ----",
                    f"  lock({unsafe});", f"                               {spl}();",
                    f"                               lock({safe});",
                    f"                               lock({unsafe});",
                    f"  <Interrupt {lvl}>", f"    lock({safe});", " *** DEADLOCK ***"]
            edge_chains = [self.edges[e] for e in zip(path, path[1:], strict=False)
                           if e in self.edges]
            stacks = [echain, ichain, *edge_chains]
            subject = unsafe
        self._add("irq-lock-inversion", subject, iwhere, stacks, expl, scen,
                  [f"{safe}: used in interrupt at {lvl}",
                   f"{unsafe}: taken at {ipl_name(eipl)}"])

    def on_unlock(self, lk: Any, ctx: Context) -> None:
        pass

    def on_bad_unlock(self, lk: Any, ctx: Context, why: str) -> None:
        self._report_at_site("bad-unlock", lk.cls, ctx, f"release of {lk.cls}: {why}",
                             [f"  unlock({lk.cls});   /* {why} */"])

    def on_spl(self, ctx: Context, old: int, new: int) -> None:
        if new < old:
            self.epoch[ctx.cpu.index] += 1
            # lowering the level while holding spin locks enables interrupts under them
            # (lockdep's irqsafe2B: "irqs on while held")
            for lk in ctx.held:
                if lk.kind != "spin":
                    continue
                ci = self._class(lk, ctx)
                state = (ctx.level if ctx.intr else -1, new)
                if state not in ci.states:
                    ci.states.add(state)
                    self._new_usage(ci, ctx, new)

    def on_sleep(self, td: Thread, wmesg: str) -> None:
        self.epoch[td.cpu.index] += 1
        spins = [lk for lk in td.held if lk.kind == "spin"]
        if spins:
            names = ", ".join(lk.cls for lk in spins)
            self._report_at_site(
                "sleep-holding-spinlock", spins[0].cls, td,
                f"tsleep(\"{wmesg}\") while holding spin lock(s) {names}",
                [f"  lock({spins[0].cls});", f"  tsleep(\"{wmesg}\");",
                 f"  /* another CPU spins on {spins[0].cls} until we wake */"])

    def on_intr_exit(self, frame: Context) -> None:
        cpu = frame.cpu
        self.epoch[cpu.index] += 1
        if frame.held:
            names = ", ".join(lk.cls for lk in frame.held)
            self._report_at_site("spl-imbalance", frame.held[0].cls, frame,
                                 f"interrupt handler {frame.name} returned holding {names}",
                                 [])
        if cpu.ipl != frame.level:
            self._report_at_site("spl-imbalance", SPL_NAMES.get(frame.level, "spl"), frame,
                                 f"interrupt handler {frame.name} returned at "
                                 f"{ipl_name(cpu.ipl)}, entered at {ipl_name(frame.level)}",
                                 [])

    def on_userret(self, td: Context | None) -> None:
        if td is None:
            return
        if td.cpu.ipl != IPL_NONE:
            self._report_at_site("spl-imbalance", SPL_NAMES.get(td.cpu.ipl, "spl"), td,
                                 f"return to user mode at {ipl_name(td.cpu.ipl)}", [])
        spins = [lk for lk in td.held if lk.kind == "spin"]
        if spins:
            self._report_at_site("spl-imbalance", spins[0].cls, td,
                                 "return to user mode holding "
                                 + ", ".join(lk.cls for lk in spins), [])

    def on_thread_exit(self, td: Thread) -> None:
        if td.held:
            self._add("spl-imbalance", td.held[0].cls, _where(td), [thread_chain(td)],
                      f"thread {td.name} exited holding "
                      + ", ".join(lk.cls for lk in td.held))

    def on_self_deadlock(self, lk: Any, cur: Context, holder: Context,
                         stacks: list[list[str]]) -> None:
        if holder is cur:
            self._add("recursive-lock", lk.cls, _where(cur), stacks,
                      f"{lk.cls} taken again by {cur.describe()}, which holds it",
                      [f"  lock({lk.cls});", f"  lock({lk.cls});", " *** DEADLOCK ***"])
            return
        lvl = ipl_name(cur.level) if cur.intr else ipl_name(cur.cpu.ipl)
        self._add("deadlock", lk.cls, _where(cur), stacks,
                  f"{cur.describe()} spins on {lk.cls}, held by {holder.describe()} on the "
                  f"same CPU: locking against myself",
                  ["       CPU0", "       ----", f"  lock({lk.cls});   /* {holder.name} */",
                   f"  <Interrupt {lvl}>", f"    lock({lk.cls});   /* {cur.name} */",
                   " *** DEADLOCK *** (this run)"])

    def on_spin_deadlock(self, lk: Any, cur: Context, holder: Context,
                         stacks: list[list[str]]) -> None:
        self._add("deadlock", lk.cls, _where(cur), stacks,
                  f"{cur.describe()} spins forever on {lk.cls}, held by {holder.describe()}, "
                  "which is not running")

    def on_sleep_deadlock(self, lkp: Any, parties: list[Any], stacks: list[list[str]]) -> None:
        self._add("deadlock", lkp.cls, " / ".join(p.describe() for p in parties), stacks,
                  "a cycle of sleeping waiters: " + ", ".join(
                      f"{p.describe()} waits for {getattr(p.wchan, 'cls', '?')}"
                      for p in parties))

    def record_panic(self, p: Panic) -> None:
        if isinstance(p, Deadlock):
            if not any(f.kind in ("deadlock", "recursive-lock") for f in self._findings.values()):
                self._add("deadlock", "run", p.context, p.stacks, p.message)
            return
        if "interrupt handler cannot sleep" in p.message:
            self._add("sleep-in-interrupt", "tsleep", p.context, p.stacks, p.message,
                      ["  <Interrupt>", "    tsleep();   /* no thread to put to sleep */"])
            return
        self._add("panic", "panic", p.context, p.stacks, p.message)

    # ---- fields -----------------------------------------------------------------------------
    def access(self, obj: Any, d: FieldDescriptor, write: bool, ctx: Context) -> None:
        """A checked field access (called by the field descriptors)."""
        self.naccess += 1
        guard = d.guard
        if guard is not None:
            ok = True
            if guard.spl and ctx.cpu.ipl < guard.spl:
                ok = False
            if ok and guard.locks:
                for name in guard.locks:
                    lk = _instance_lock(obj, name)
                    if lk is None:
                        lk = self.global_locks.get(name)
                    if lk is None or lk.holder is not ctx:
                        ok = False
                        break
            if not ok:
                self._unguarded(obj, d, guard, write, ctx)
            if guard.spl and not guard.locks:
                self._spl_only(obj, d, guard, write, ctx)
        else:
            self._eraser(obj, d, write, ctx)

    def _unguarded(self, obj: Any, d: FieldDescriptor, guard: Guard, write: bool,
                   ctx: Context) -> None:
        subject = d.subject
        held = ", ".join(lk.cls for lk in ctx.held) or "none"
        what = "writes" if write else "reads"
        missing = []
        for name in guard.locks:
            lk = _instance_lock(obj, name) or self.global_locks.get(name)
            if lk is None or lk.holder is not ctx:
                missing.append(name)
        if guard.spl and ctx.cpu.ipl < guard.spl:
            missing.append(SPL_NAMES.get(guard.spl, ipl_name(guard.spl)))
        if ctx.intr:
            scen = ["       CPU0", "       ----",
                    f"  lock({guard.locks[0] if guard.locks else 'nothing'});",
                    f"  {d.field} = ...;", f"  <Interrupt {ipl_name(ctx.level)}>",
                    f"    {d.field} = ...;   /* {ctx.name}: lost update */"]
        else:
            scen = ["       CPU0                    CPU1", "       ----                    ----",
                    f"  {d.field} = ...;   /* without {', '.join(missing)} */",
                    f"                               lock({guard.text});",
                    f"                               {d.field} = ...;"]
        self._report_at_site(
            "unguarded-access", subject, ctx,
            f"{_where(ctx)} {what} {subject} (guarded by {guard.text}) without "
            f"{', '.join(missing)}; locks held: {held}", scen)

    def _spl_only(self, obj: Any, d: FieldDescriptor, guard: Guard, write: bool,
                  ctx: Context) -> None:
        subject = d.subject
        if subject not in self.spl_only_seen:
            self.spl_only_seen.add(subject)
            spl = SPL_NAMES.get(guard.spl, ipl_name(guard.spl))
            self._add("spl-only-guard", subject, _where(ctx), [call_chain(3)],
                      f"{subject} is guarded by {spl} alone: {spl} masks "
                      f"{ipl_name(guard.spl)} interrupts on this CPU only, so on a "
                      "multiprocessor another CPU's interrupt handler can change it at once",
                      ["       CPU0                    CPU1", "       ----                    ----",
                       f"  {spl}();", f"  use {d.field};",
                       f"                               <Interrupt {ipl_name(guard.spl)}>",
                       f"                               change {d.field};",
                       f"  use {d.field};   /* changed under us */"])
        # an actual race: another CPU still inside its section on the same object field
        key = (id(obj), d.field)
        cpu = ctx.cpu.index
        rec = self.last_section.get(key)
        if rec is not None and rec[0] != cpu and self.epoch[rec[0]] == rec[1] and \
                (write or rec[2]) and rec[3] is not ctx:
            chain = call_chain(3)
            self._add("data-race", subject, _where(ctx), [rec[4], chain],
                      f"cpu{cpu} {'writes' if write else 'reads'} {subject} while cpu{rec[0]} "
                      f"is still inside its {SPL_NAMES.get(guard.spl, 'spl')} section that "
                      f"{'wrote' if rec[2] else 'read'} it", [])
        if ctx.cpu.ipl >= guard.spl and len(self.epoch) > 1 and (
                rec is None or rec[0] != cpu or rec[1] != self.epoch[cpu]
                or (write and not rec[2])):
            self.last_section[key] = (cpu, self.epoch[cpu], write, ctx, call_chain(3))

    def _eraser(self, obj: Any, d: FieldDescriptor, write: bool, ctx: Context) -> None:
        key = (id(obj), d.field)
        me = ctx if not ctx.intr else ("intr", ctx.cpu.index, ctx.level)
        held = {lk for lk in ctx.held}
        if ctx.cpu.ipl > IPL_NONE:
            held.add(("spl", ctx.cpu.index, ctx.cpu.ipl))
        st = self.eraser.get(key)
        if st is None:
            self.eraser[key] = [EXCLUSIVE, me, None, obj]
            return
        state, owner, cset, _ = st
        if state == EXCLUSIVE:
            if owner is me:
                return
            st[0] = SHARED_MODIFIED if write else SHARED
            st[2] = held
        else:
            st[2] = cset & held if cset is not None else held
            if write:
                st[0] = SHARED_MODIFIED
        if st[0] == SHARED_MODIFIED and not st[2]:
            self._report_at_site("lockset-race", d.subject, ctx,
                                 f"{d.subject} is shared and written, and no lock is held at "
                                 "every access (the candidate set became empty here)",
                                 [f"  {d.field} = ...;   /* by {_where(ctx)} */"])


# Report helpers live in report.py; keep the level constant visible for users of the module.
__all__ = ["Checker", "IPL_BIO"]


def _instance_lock(obj: Any, name: str) -> Any:
    """An instance lock named in a guard: the object's attribute of that name, or that of the
    protocol's state the object carries (v_proto: a protocol's own per-vnode locks)."""
    lk = getattr(obj, name, None)
    if lk is None:
        lk = getattr(getattr(obj, "v_proto", None), name, None)
    return lk
