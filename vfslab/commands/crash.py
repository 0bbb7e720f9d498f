"""`vfslab crashtest`, `vfslab fsck`, and the crash step of `vfslab run --crash-at`."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import click

from vfslab.commands.common import parse_duration_s, parse_sets
from vfslab.errors import InputError

NS = 1_000_000_000
POLICIES = ("syncer", "trickle", "linux")


# ---- vfslab run --crash-at ------------------------------------------------------------------
def crash_run(cfg: Any, crash_at: str | None, after_request: int | None, tear: bool,
              image_path: str | None) -> tuple[Any, Any]:
    """Run `cfg` recorded, cut power at the chosen instant; (run result, CrashOutcome)."""
    from dataclasses import replace

    from vfslab.crash.crashtest import crash_at as do_crash
    from vfslab.crash.crashtest import instant_after_request, recorded_run
    from vfslab.crash.image import Cutter, save_image
    from vfslab.crash.journal import JournalState, journal_of
    from vfslab.runner import load_scenario

    if crash_at is not None and after_request is not None:
        raise InputError("--crash-at and --crash-after-request: give one, not both")
    at_s: float | None = None
    if crash_at is not None:
        if crash_at.strip().lower() == "random":
            dur = cfg.duration_s if cfg.duration_s is not None else load_scenario(
                cfg.scenario, cfg.strict, cfg.speed, cfg.no_think).duration_s
            at_s = random.Random(f"crash-at:{cfg.seed}").uniform(0.0, dur)
        else:
            at_s = parse_duration_s(crash_at, "--crash-at")
            dur = cfg.duration_s if cfg.duration_s is not None else load_scenario(
                cfg.scenario, cfg.strict, cfg.speed, cfg.no_think).duration_s
            if not 0 < at_s <= dur:
                raise InputError(f"--crash-at: expected a time within the run (0 to {dur:g} "
                                 f"s), got {crash_at!r}")
        cfg = replace(cfg, duration_s=at_s)
    res = recorded_run(cfg)
    if at_s is not None:
        t = res.t0_ns + round(at_s * NS)
    else:
        assert after_request is not None
        t = instant_after_request(res, after_request)
    out = do_crash(res, Cutter(res.kernel.disk.log), JournalState(journal_of(res.kernel)), t,
                   tear, random.Random(f"tear:{cfg.seed}"), mount=False, keep_image=True)
    if image_path:
        save_image(_raw_image(res, t, tear and res.kernel.disk.tears, cfg.seed),
                   res.kernel.cfg.fs_blocks, image_path)
    # mount the repaired image on a fresh machine, as the reboot after a crash would
    from vfslab.crash.crashtest import remount

    if out.unrepairable is None:
        out.mounted = remount(res, out.image)
    return res, out


def _raw_image(res: Any, t: int, tear: bool, seed: int) -> dict[int, Any]:
    """The image as the power cut left it (before fsck), for --image."""
    from vfslab.crash.image import Cutter

    return Cutter(res.kernel.disk.log).cut(t, tear, random.Random(f"tear:{seed}"))


def print_crash(out: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    lo = out.loss
    t = Table(title=f"power cut at {out.crash_s:.3f} s", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("writes in service (torn)", str(out.in_service))
    t.add_row("fsck: problems found", str(len(out.problems)))
    t.add_row("fsck: repairs made", str(len(out.repairs)))
    t.add_row("mounted again", {True: "yes", False: "NO", None: "not tried"}[out.mounted])
    if lo is not None:
        t.add_row("fsync'd bytes lost (must be 0)", f"{lo.fsync_bytes_lost:,}")
        t.add_row("  and lost after an fsync returned an error",
                  f"{lo.fsync_bytes_lost_reported:,}")
        t.add_row("bytes lost (dirty, not yet written)", f"{lo.lost_bytes:,}")
        t.add_row("files with lost data", str(lo.files_with_loss))
        t.add_row("oldest lost data", f"{lo.max_lost_age_s:.3f} s")
        t.add_row("policy window (+ one period)", f"{lo.window_s:g} s ({lo.bound_s:g} s)")
        t.add_row("lost bytes older than that", f"{lo.over_bound_bytes:,}")
        t.add_row("  of which in the disk's queue, written out in time",
                  f"{lo.over_bound_queued_bytes:,}")
        t.add_row("  of which written out in time, the write failed",
                  f"{lo.over_bound_failed_bytes:,}")
        t.add_row("  of which an fsync reported an error for",
                  f"{lo.over_bound_reported_bytes:,}")
        t.add_row("  of which its inode or indirect block's write failed",
                  f"{lo.over_bound_meta_failed_bytes:,}")
        t.add_row("  of which not written out in time (the promise broken)",
                  f"{lo.over_bound_late_bytes:,}")
        for cause, n in lo.late_causes.items():
            t.add_row(f"    {cause}", f"{n:,}")
        t.add_row("blocks showing another file's data", str(lo.stale_blocks))
    con.print(t)
    for r in out.repairs[:30]:
        con.print(f"  fsck: {r}")
    if len(out.repairs) > 30:
        con.print(f"  fsck: ... {len(out.repairs) - 30} more")
    if lo is not None:
        for x in lo.late_losses:
            con.print(f"  [bold red]written late: {x['path'] or '#' + str(x['ino'])} page "
                      f"{x['page']}, dirtied {x['age_s']:.3f} s before the crash[/]")
        for x in lo.oldest_losses:
            con.print(f"  oldest loss: {x['path'] or '#' + str(x['ino'])} page {x['page']}, "
                      f"dirtied {x['age_s']:.3f} s before the crash")
    bug = out.bug()
    if bug:
        con.print(f"[bold red]BUG: {bug}[/]")
        if lo is not None:
            for x in lo.fsync_losses:
                con.print(f"  fsync'd page lost: {x}")


# ---- vfslab crashtest ---------------------------------------------------------------------
@click.command()
@click.argument("scenario", default="randfsync")
@click.option("--policy", "policies", multiple=True, help="syncer | trickle | linux "
              "(repeat for several; default: all three)")
@click.option("--protocol", default="netbsd-2.0", show_default=True)
@click.option("--crashes", type=int, default=100, show_default=True,
              help="crashes per policy, at seeded instants")
@click.option("--per-run", type=int, default=50, show_default=True,
              help="crashes taken from one recorded run (each batch uses the next seed)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--duration", default=None, help="emulated length of each run (default: the "
              "scenario's)")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="policy tunable (trickle.window=10s) or machine.X")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="TOML file of settings ([machine] faults = [...], [trickle] window = 10)")
@click.option("--no-tear", is_flag=True, help="writes in service are lost whole, not torn")
@click.option("--no-mount", is_flag=True, help="skip mounting each repaired image")
@click.option("--jobs", type=click.IntRange(1, 4096), default=1, show_default=True,
              help="parallel workers")
@click.option("--engine", type=click.Choice(["local", "ray", "dask"]), default="local",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
def crashtest(scenario: str, policies: tuple[str, ...], protocol: str, crashes: int,
              per_run: int, seed: int, duration: str | None, sets: tuple[str, ...],
              config: str | None, no_tear: bool, no_mount: bool, jobs: int, engine: str,
              as_json: bool) -> None:
    """Crash SCENARIO at seeded instants; check that no fsync'd byte is lost, that fsck
    repairs every image, and how old the lost data was against each policy's window."""
    from vfslab.crash.crashtest import plan, summarize
    from vfslab.kern.protocols import protocol_class
    from vfslab.plugins import canonical, check_policy_sets, options_for
    from vfslab.sweep import engines

    pols = [canonical(p) for p in policies] or list(POLICIES)
    protocol = canonical(protocol)
    protocol_class(protocol)
    pol_opts, machine, cost = parse_sets(sets, config)
    if cost:
        raise InputError("--set cost.*: not supported by crashtest")
    pol_opts = check_policy_sets(pol_opts, pols)
    dur = parse_duration_s(duration, "--duration") if duration is not None else None
    points = plan(scenario, pols, crashes, seed, per_run, dur, protocol, not no_tear,
                  not no_mount, machine)
    for pt in points:
        pt["policy_options"] = options_for(pt["policy"], pol_opts)
    from vfslab.commands.progress import progress, wanted

    rows: list[dict[str, Any]] = []
    wall0 = time.perf_counter()
    total = sum(int(pt.get("ncrashes", pt.get("crashes", 1))) for pt in points)
    with progress("crashtest", total, wanted(as_json), unit="crashes") as bar:
        def on_row(row: dict[str, Any]) -> None:
            rows.append(row)
            bar.advance(int(row.get("crashes", 0)) or 1)

        engines.execute(points, on_row, engine, jobs, None,
                        "vfslab.crash.crashtest:run_batch")
    wall = time.perf_counter() - wall0
    failed = [r for r in rows if r.get("status") == "failed"]
    if failed:
        engines.reraise(failed[0])      # a plug-in's failure, or vfslab's: said as such
        # a batch that raised (a panic before the crash, a bad setting met only at boot)
        raise InputError(f"{len(failed)} of {len(rows)} crash-test runs failed; the first: "
                         f"{failed[0]['error']}")
    per_policy = {p: summarize([r for r in rows if r["policy"] == p]) for p in pols}
    result: dict[str, Any]
    if len(pols) == 1:
        result = dict(per_policy[pols[0]])
    else:
        result = {
            "policies": per_policy,
            "crashes": sum(s["crashes"] for s in per_policy.values()),
            "repairs": sum(s["repairs"] for s in per_policy.values()),
            "fsync_bytes_lost": sum(s["fsync_bytes_lost"] for s in per_policy.values()),
            "max_lost_age_s": {p: s["max_lost_age_s"] for p, s in per_policy.items()},
            "window_s": {p: s["window_s"] for p, s in per_policy.items()},
        }
    result.update({"scenario": scenario, "seed": seed, "protocol": protocol,
                   "wall_s": wall, "tear": not no_tear})
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_crashtest(scenario, per_policy, wall)
    if any(s["bugs"] for s in per_policy.values()):
        raise SystemExit(1)


def _print_crashtest(scenario: str, per_policy: dict[str, dict[str, Any]], wall: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from vfslab.crash.loss import REPORTED_CAUSE

    con = Console()
    t = Table(title=f"vfslab crashtest {scenario}")
    for col in ("policy", "crashes", "fsck repairs", "fsync'd bytes lost", "lost MB a crash",
                "oldest lost", "promise", "older", "written late"):
        t.add_column(col, justify="right")
    for p, s in per_policy.items():
        t.add_row(p, f"{s['crashes']:,}", f"{s['repairs']:,}", f"{s['fsync_bytes_lost']:,}",
                  f"{s['mean_lost_bytes'] / 1e6:.2f}", f"{s['max_lost_age_s']:.2f} s",
                  f"{s['bound_s']:g} s", f"{s['over_bound_bytes']:,} B",
                  f"{s['over_bound_late_bytes']:,} B")
    con.print(t)
    for p, s in per_policy.items():
        con.print(f"  {p}: {s['crashes_repaired']:,} of {s['crashes']:,} images needed fsck; "
                  f"promise: all dirty data written out within window {s['window_s']:g} s "
                  f"+ one daemon period; "
                  f"{s['stale_blocks']:,} blocks showed another file's data")
        if s["repair_kinds"]:
            kinds = ", ".join(f"{k} ({v:,})" for k, v in sorted(
                s["repair_kinds"].items(), key=lambda kv: -kv[1])[:6])
            con.print(f"  {p}: fsck repairs: {kinds}")
        if s["fsync_bytes_lost"]:
            causes = "; ".join(f"{n:,} B: {c}" for c, n in s["fsync_loss_causes"].items()
                               if c != REPORTED_CAUSE)
            con.print(f"[bold red]  {p}: fsync'd bytes lost by cause: {causes}[/]")
        if s.get("fsync_bytes_lost_reported"):
            con.print(f"[yellow]  {p}: {s['fsync_bytes_lost_reported']:,} more fsync'd bytes "
                      f"lost after an fsync of them returned an error (not counted above: "
                      f"{REPORTED_CAUSE})[/]")
        if s.get("pages_dropped"):
            con.print(f"  {p}: {s['pages_dropped']:,} pages lost their data to failed writes "
                      f"in the recorded runs (uvm.write_error=drop, as 2.0)")
        for b in s["bugs"]:
            con.print(f"[bold red]  {p}: BUG seed {b['seed']} at {b['crash_s']:.3f} s: "
                      f"{b['bug']}[/]")
        if s["over_bound_bytes"]:
            queued = s["over_bound_queued_bytes"]
            failed = s["over_bound_failed_bytes"]
            told = s.get("over_bound_reported_bytes", 0)
            meta = s.get("over_bound_meta_failed_bytes", 0)
            late = s["over_bound_late_bytes"]
            con.print(f"[yellow]  {p}: of the bytes lost older than window + period, "
                      f"{queued:,} had been written out within it and were still in the "
                      f"disk's queue (the disk had not kept up with what was written out), "
                      f"{failed:,} had been written out within it and the write "
                      f"failed, {told:,} went with a failed write an fsync of the file "
                      f"reported (its block pointers'), {meta:,} with a failed write of its "
                      f"inode or indirect block (no fsync to tell)[/]")
            if late:
                causes = "; ".join(f"{n:,} B: {c}" for c, n in s.get("late_causes", {}).items())
                con.print(f"[bold red]  {p}: {late:,} B were not written out within window "
                          f"+ period: the promise was not kept. By cause: {causes}[/]")
    con.print(f"{sum(s['crashes'] for s in per_policy.values()):,} crashes in {wall:.1f} s")


# ---- vfslab fsck ---------------------------------------------------------------------------
@click.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("-y", "--repair", is_flag=True, help="repair, as fsck -y (in place unless -o)")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="write the repaired image here instead of over IMAGE")
@click.option("--json", "as_json", is_flag=True)
def fsck(image: str, repair: bool, output: str | None, as_json: bool) -> None:
    """Check a file system image (from `vfslab run --crash-at T --image FILE`), and repair it
    with -y. Exit status as fsck(8): 0 clean, 1 errors corrected, 4 errors left, 8 cannot
    repair."""
    from vfslab.commands.progress import progress, wanted
    from vfslab.crash.image import load_image, save_image
    from vfslab.fs.fsck_repair import Repairer, Unrepairable

    store, nblocks = load_image(image)
    r = Repairer(store, nblocks)
    status = 0
    error = None
    try:
        with progress("fsck: inodes", 1.0, wanted(as_json), unit="inode blocks") as bar:
            r.progress = lambda done, total: bar.update(done, total=total)
            if repair:
                try:
                    r.run()
                except Unrepairable as e:
                    error = str(e)
                problems = r.before
                if error:
                    status = 8                  # nothing is written
                elif r.repairs:
                    status = 1
                    save_image(store, nblocks, output or image)
            else:
                from vfslab.fs.fsck import fsck_image

                problems = fsck_image(store, nblocks, r.progress)
                status = 4 if problems else 0
    except Exception as e:          # no input may end in a traceback: say it, write nothing
        click.echo(f"vfslab fsck: {image}: cannot check this image ({type(e).__name__}: "
                   f"{e}); nothing was written", err=True)
        raise SystemExit(8) from None
    if as_json:
        click.echo(json.dumps({"image": image, "problems": problems, "repairs": r.repairs,
                               "unrepairable": error, "status": status}, indent=2))
    else:
        for p in problems:
            click.echo(f"** {p}")
        for x in r.repairs:
            click.echo(f"REPAIRED: {x}")
        if error:
            click.echo(f"CANNOT REPAIR: {error}")
        click.echo(f"{image}: {len(problems)} problems, {len(r.repairs)} repairs"
                   + ("" if repair or not problems else " (run with -y to repair)"))
    raise SystemExit(status)
