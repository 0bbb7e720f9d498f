"""`vfslab bench engine`: the same discrete-event model on vfslab's engine and on SimPy, in one
process run: events per second for both and their ratio.

The model: `threads` workers loop: issue a request to a disk and sleep until its completion
interrupt; every fourth request they also think (a timed sleep). The disk serves one request at
a time from a FIFO queue; its completion (an IPL_BIO interrupt in vfslab) wakes the requester
and starts the next request. A periodic timer wakes a ticker thread every millisecond.
Events, counted the same way for both: request completions + think timeouts + timer ticks.
SimPy's version is written as SimPy is meant to be used: a Resource for the disk, timeouts
for service and think times, an Event re-armed by the timer.
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from collections.abc import Generator
from typing import Any

import click

from vfslab.sim.callout import periodic
from vfslab.sim.engine import Engine
from vfslab.sim.ipl import IPL_BIO

SERVICE_NS = 50_000
THINK_NS = 400_000
TICK_NS = 1_000_000


def run_vfslab(threads: int, events: int, seed: int = 1) -> tuple[int, float]:
    m = Engine(seed=seed)
    rng = random.Random(seed)
    queue: deque[object] = deque()
    busy = [False]
    count = [0]
    tick = object()

    def start_next() -> None:
        if queue:
            req = queue.popleft()
            busy[0] = True
            m.post_intr(0, IPL_BIO, done, req, at=m.time() + SERVICE_NS, name="disk")
        else:
            busy[0] = False

    def done(req: object) -> None:
        count[0] += 1
        m.wakeup(req)
        start_next()

    def worker(i: int) -> Generator[Any, Any, None]:
        ident = object()
        n = 0
        think = THINK_NS + rng.randrange(THINK_NS)
        while count[0] < events:
            queue.append(ident)
            if not busy[0]:
                start_next()
            yield from m.tsleep(ident, "io")
            n += 1
            if n % 4 == 0:
                yield from m.tsleep(ident, "think", think)
                count[0] += 1

    def ticker() -> Generator[Any, Any, None]:
        while count[0] < events:
            yield from m.tsleep(tick, "tick")

    def on_tick(_: Any) -> None:
        count[0] += 1
        m.wakeup(tick)

    for i in range(threads):
        m.spawn(f"w{i}", worker(i))
    m.spawn("ticker", ticker())
    c = periodic(m, TICK_NS, on_tick)
    t0 = time.perf_counter()
    while count[0] < events:
        m.run(until=m.now + 100 * TICK_NS)
    wall = time.perf_counter() - t0
    c.stop()
    return count[0], wall


def run_simpy(threads: int, events: int, seed: int = 1) -> tuple[int, float]:
    import simpy

    env = simpy.Environment()
    rng = random.Random(seed)
    disk = simpy.Resource(env, capacity=1)
    count = [0]
    tick = [env.event()]

    def worker(i: int) -> Generator[Any, Any, None]:
        n = 0
        think = (THINK_NS + rng.randrange(THINK_NS)) / 1e9
        while count[0] < events:
            with disk.request() as req:
                yield req
                yield env.timeout(SERVICE_NS / 1e9)
            count[0] += 1
            n += 1
            if n % 4 == 0:
                yield env.timeout(think)
                count[0] += 1

    def timer() -> Generator[Any, Any, None]:
        while True:
            yield env.timeout(TICK_NS / 1e9)
            count[0] += 1
            ev = tick[0]
            tick[0] = env.event()
            ev.succeed()

    def ticker() -> Generator[Any, Any, None]:
        while count[0] < events:
            yield tick[0]

    for i in range(threads):
        env.process(worker(i))
    env.process(timer())
    env.process(ticker())
    t0 = time.perf_counter()
    while count[0] < events:
        env.run(until=env.now + 0.1)
    return count[0], time.perf_counter() - t0


def measure(threads: int, events: int, repeats: int) -> dict[str, float]:
    best_v = best_s = 0.0
    for _ in range(repeats):
        n, w = run_vfslab(threads, events)
        best_v = max(best_v, n / w)
        n, w = run_simpy(threads, events)
        best_s = max(best_s, n / w)
    return {"vfslab_events_per_s": best_v, "simpy_events_per_s": best_s,
            "ratio": best_v / best_s, "threads": threads, "events": events,
            "repeats": repeats}


@click.command()
@click.option("--threads", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option("--events", type=click.IntRange(1000, 10**8), default=200_000, show_default=True,
              help="model events per run (completions + think timeouts + timer ticks)")
@click.option("--repeats", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def engine(threads: int, events: int, repeats: int, as_json: bool) -> None:
    """vfslab's engine against SimPy on the same model, events per second."""
    try:
        import simpy  # noqa: F401
    except ImportError:
        raise click.ClickException("SimPy is not installed: pip install 'vfslab[bench]'") from None
    out = measure(threads, events, repeats)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"model: {threads} threads, a disk with completion interrupts, a 1 ms timer; "
               f"{events:,} events a run, best of {repeats}")
    click.echo(f"  vfslab: {out['vfslab_events_per_s']:>12,.0f} events/s")
    click.echo(f"  SimPy:  {out['simpy_events_per_s']:>12,.0f} events/s")
    click.echo(f"  ratio:  {out['ratio']:.2f}x")
