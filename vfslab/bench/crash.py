"""`vfslab bench crash`: what a crash costs. The peer is the obvious design measured in the
same run: boot and run the machine up to each crash instant and cut its power there. vfslab
instead records one run and rebuilds each crash image from the disk's write log; both give the
same images (checked here), and the ratio is what recording buys per crash."""

from __future__ import annotations

import json
import random
import time

import click

NS = 1_000_000_000


@click.command()
@click.option("--scenario", default="smallfiles", show_default=True)
@click.option("--crashes", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option("--duration", default="10s", show_default=True, help="emulated run length")
@click.option("--json", "as_json", is_flag=True)
def crash(scenario: str, crashes: int, duration: str, as_json: bool) -> None:
    """Crashes per second: one recorded run against a run per crash."""
    from dataclasses import replace

    from vfslab.commands.common import parse_duration_s
    from vfslab.crash.crashtest import crash_at, crash_instants, recorded_run
    from vfslab.crash.image import Cutter
    from vfslab.crash.journal import JournalState, journal_of
    from vfslab.runner import RunConfig

    dur = parse_duration_s(duration, "--duration")
    cfg = RunConfig(scenario=scenario, duration_s=dur, seed=1)
    t0 = time.perf_counter()
    res = recorded_run(cfg)
    instants = crash_instants(res, crashes, random.Random(0))
    cutter = Cutter(res.kernel.disk.log)
    state = JournalState(journal_of(res.kernel))
    recorded = [crash_at(res, cutter, state, t, False, random.Random(0), mount=True,
                         keep_image=True) for t in instants]
    t_recorded = time.perf_counter() - t0

    t0 = time.perf_counter()
    same = 0
    for t, rec in zip(instants, recorded, strict=True):
        # run only up to the instant, then cut power at the end of the run
        short = recorded_run(replace(cfg, duration_s=(t - res.t0_ns) / NS))
        out = crash_at(short, Cutter(short.kernel.disk.log), JournalState(journal_of(short.kernel)),
                       short.kernel.m.now, False, random.Random(0), mount=True, keep_image=True)
        same += out.image == rec.image
    t_rerun = time.perf_counter() - t0
    result = {
        "scenario": scenario, "crashes": crashes, "duration_s": dur,
        "recorded_s": t_recorded, "rerun_s": t_rerun,
        "recorded_crashes_per_s": crashes / t_recorded, "rerun_crashes_per_s": crashes / t_rerun,
        "speedup": t_rerun / t_recorded, "identical_images": same,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{crashes} crashes of {scenario} ({duration} runs), each repaired and mounted:")
    click.echo(f"  one recorded run, images from its write log: {t_recorded:.2f} s "
               f"({crashes / t_recorded:.1f} crashes/s)")
    click.echo(f"  a run up to each crash (the peer):          {t_rerun:.2f} s "
               f"({crashes / t_rerun:.1f} crashes/s)")
    click.echo(f"  ratio: {t_rerun / t_recorded:.2f}x; identical images: {same} of {crashes}")
