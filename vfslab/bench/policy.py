"""`vfslab bench policy`: the trickle daemon's cost per wake-up must not grow with the dirty
pages that are not yet due. Two machines, one with 10 thousand and one with a million dirty
pages not due within the window, and on each the same groups of pages dirtied a minute apart
an hour earlier; each measured wake-up comes when one group is due, and writes it. The figure
is the fastest of the wake-ups on each machine (a single wake-up's wall time moved from 37 to
66 ms between runs on a quiet host), and the ratio. (Smoothing is off here: its share of the
backlog is work, not search.)"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Generator
from typing import Any

import click

from vfslab.kern.init_main import KernelConfig

NS = 1_000_000_000


GROUP_GAP_S = 60          # between the groups of due pages: one group is due at a time


def _machine(not_due_pages: int, due_pages: int, groups: int) -> tuple[Any, Any, list[int]]:
    """A kernel with trickle: `groups` groups of `due_pages` pages dirtied a minute apart,
    then `not_due_pages`; and when each group's last page was dirtied."""
    from vfslab.machine import boot
    from vfslab.policy.trickle import TricklePolicy

    nfiles = 64
    # memory to spare, so that the page daemon stays out of it
    mem_mb = (not_due_pages + groups * due_pages) * 5 // (4 * 256) + 64
    # the policy's own backlog: ffs_write's write-behind would write the pages as they are
    # dirtied (2.0), leaving trickle nothing to scale over
    cfg = KernelConfig(
        sysctl={"ffs.write_behind": False}, physmem_mb=mem_mb, disk="ssd",
        fs_blocks=max(1 << 16, 2 * (not_due_pages + groups * due_pages)), policy="trickle",
        # no pace beyond what is due: the measured cost is finding what is due among what is not
        # and the daemon asleep: the benchmark calls its wake-up itself
        policy_options={"window": 3600.0, "pace": "none", "hz": 1e-6})
    state: dict[str, Any] = {}
    ends: list[int] = []

    def then(k: Any) -> Generator[Any, Any, None]:
        from vfslab.kern.fcntl import O_CREAT, O_RDWR
        from vfslab.kern.kern_proc import Proc, ProcSyscalls

        sys = ProcSyscalls(k, Proc(1, "fill"))
        fds = []
        for i in range(nfiles):
            fds.append((yield from sys.open(f"/f{i}", O_RDWR | O_CREAT, 0o644)))
        # each group's pages of a file, in 64 KiB extents of their own with one between
        # (trickle writes an extent's dirty neighbours with its due pages)
        rows = (-(-due_pages // nfiles) // 16 + 2) * 16
        for g in range(groups):
            for i in range(due_pages):
                yield from sys.pwrite(fds[i % nfiles], 4096, (g * rows + i // nfiles) * 4096)
            ends.append(k.m.now)
            yield from k.m.tsleep("gap", "gap", GROUP_GAP_S * NS)
        # the rest after the last group: none is due at any measured wake-up (the window is
        # an hour)
        per = not_due_pages // nfiles
        for j, fd in enumerate(fds):
            off = (groups * rows + 1) * 4096
            left = per * 4096
            while left:
                n = min(left, 1 << 20)
                yield from sys.pwrite(fd, n, off)
                off += n
                left -= n
            del j
        state["ready"] = True
        yield from k.m.tsleep("hold", "hold")

    k = boot(cfg, then=then)
    while "ready" not in state:
        k.m.run(until=k.m.now + NS // 10)
    pol = k.policy
    assert isinstance(pol, TricklePolicy)
    return k, pol, ends


def _wakeup_cost(k: Any, pol: Any, ends: list[int]) -> tuple[float, int]:
    """The fastest of the wake-ups, one as each group comes due, and the pages they wrote."""
    best = float("inf")
    period = NS // 10
    window = int(pol.window_s() * NS)
    written0 = pol.pages_written
    for end in ends:
        # group g is due (dirtied at most `end`), the next (a minute later) is not
        k.m.run(until=max(k.m.now, end + window))
        done: dict[str, float] = {}

        def one(done: dict[str, float] = done) -> Generator[Any, Any, None]:
            gc.collect()
            gc.disable()       # the collector's pauses grow with the heap, not with trickle
            t0 = time.perf_counter()
            yield from pol.wakeup(period)
            done["t"] = time.perf_counter() - t0
            gc.enable()

        k.m.spawn("bench", one())
        while "t" not in done:
            k.m.run(until=k.m.now + NS // 100)
        best = min(best, done["t"])
    return best, pol.pages_written - written0


@click.command()
@click.option("--small", type=int, default=10_000, show_default=True)
@click.option("--large", type=int, default=1_000_000, show_default=True)
@click.option("--due", type=int, default=2048, show_default=True,
              help="pages due at the measured wake-up")
@click.option("--wakeups", type=int, default=5, show_default=True,
              help="measured wake-ups on each machine (the fastest is the figure)")
@click.option("--json", "as_json", is_flag=True)
def policy(small: int, large: int, due: int, wakeups: int, as_json: bool) -> None:
    """Trickle's cost per wake-up with few and with many not-yet-due dirty pages."""
    if wakeups < 1:
        raise click.BadParameter(f"expected at least 1, got {wakeups}", param_hint="--wakeups")
    out: dict[str, Any] = {}
    for label, n in (("small", small), ("large", large)):
        k, pol, ends = _machine(n, due, wakeups)
        dirty = k.uvm.ndirty
        if dirty < 0.9 * (n + wakeups * due):
            # never a ratio over a backlog that was not built (write-behind once wrote it)
            raise click.ClickException(f"the {label} machine holds {dirty:,} dirty pages, "
                                       f"not the {n + wakeups * due:,} asked for: nothing "
                                       f"to measure")
        cost, written = _wakeup_cost(k, pol, ends)
        if written != wakeups * due:
            # each wake-up writes its group and nothing else, or the figure measures another
            # amount of work
            raise click.ClickException(f"the {label} machine's {wakeups} wake-ups wrote "
                                       f"{written:,} pages, not {wakeups * due:,}")
        out[label] = {"dirty_pages": dirty, "wakeup_s": cost, "wakeups": wakeups,
                      "pages_written": written // wakeups, "examined": pol.examined}
    out["ratio"] = out["large"]["wakeup_s"] / out["small"]["wakeup_s"]
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for label in ("small", "large"):
        r = out[label]
        click.echo(f"{r['dirty_pages']:>10,} dirty pages: a wake-up writing "
                   f"{r['pages_written']:,} due pages took {r['wakeup_s'] * 1e3:.2f} ms "
                   f"(the fastest of {r['wakeups']})")
    click.echo(f"ratio (large / small): {out['ratio']:.2f}x (flat is 1.0x)")
