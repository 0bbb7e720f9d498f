"""Crash tests: cut power at chosen instants, repair the file system, mount it again and
compare what the disk holds with what the workload was promised.

One recorded run gives many crashes: the run keeps its journal and its disk's write log, and
each crash instant's image is rebuilt from them afterwards, so crashing does not perturb the run
(a test checks that a recorded run's summary equals an unrecorded one's). Each crash then goes
through the same steps as a real one: the torn image, fsck's check, fsck -y's repairs, a mount
of the repaired image on a fresh machine, and the loss report.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

from vfslab.crash.image import Cutter
from vfslab.crash.journal import JournalState, journal_of
from vfslab.crash.loss import LossReport, loss_report, paths_of
from vfslab.errors import InputError
from vfslab.failure import reported
from vfslab.fs.fsck_repair import Repairer, Unrepairable
from vfslab.runner import RunConfig, RunResult, kernel_config, load_scenario, run_scenario
from vfslab.sim.watchdog import watchdog

NS = 1_000_000_000


@dataclass
class CrashOutcome:
    """One crash: when, what fsck found and repaired, whether the image mounted, and the
    loss report."""

    crash_s: float
    in_service: int                     # writes in service when the power went
    problems: list[str]                 # fsck before repair
    repairs: list[str]
    unrepairable: str | None
    mounted: bool | None                # None: not tried
    loss: LossReport | None
    image: dict[int, Any] = field(repr=False, default_factory=dict)

    def bug(self) -> str | None:
        """What went wrong that must not: fsync'd data lost, fsck unable to repair, or the
        repaired image failing to mount."""
        if self.unrepairable:
            return f"fsck could not repair the image: {self.unrepairable}"
        if self.mounted is False:
            return "the repaired image does not mount"
        if self.loss is not None and self.loss.fsync_bytes_lost:
            return f"{self.loss.fsync_bytes_lost} fsync'd bytes lost"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"crash_s": self.crash_s, "in_service": self.in_service,
                "problems": self.problems, "repairs": self.repairs,
                "unrepairable": self.unrepairable, "mounted": self.mounted,
                "loss": self.loss.to_dict() if self.loss is not None else None,
                "bug": self.bug()}


def policy_bound(res: RunResult) -> tuple[float, float]:
    """(window, window plus one daemon period) of the run's policy."""
    pol = res.kernel.policy
    return pol.window_s(), pol.window_s() + pol.period_s()


def remount(res: RunResult, image: dict[int, Any]) -> bool:
    """Boot a fresh machine of the same configuration on `image` and mount it: the step after
    a real crash. True if the mount and a walk of the root directory succeed."""
    from vfslab.kern.init_main import Kernel, vfs_mountroot, vfs_unmountall
    from vfslab.kern.vfs_lookup import LOOKUP, NDINIT, namei
    from vfslab.machine import attach

    kc = replace(res.kernel.cfg, invariants=False, disk_options={
        k: v for k, v in res.kernel.cfg.disk_options.items() if k != "faults"})
    k = Kernel(kc)
    attach(k, store=dict(image))
    out: dict[str, int] = {}

    k.proto.start()        # a protocol's own threads (biodoned) complete the mount's I/O

    def init() -> Generator[Any, Any, None]:
        err = yield from vfs_mountroot(k)
        if not err:
            nd = NDINIT(LOOKUP, 0, "/")
            err = yield from namei(k, nd)
            if not err and nd.ni_vp is not None:
                yield from k.vfs.vrele(nd.ni_vp)
                err = yield from vfs_unmountall(k)
        out["err"] = err

    k.m.spawn("init", init())
    with reported(lambda: f"the mount after a crash of {res.scenario.name}, policy "
                  f"{kc.policy}, protocol {kc.protocol}, seed {kc.seed}", lambda: k.m.now), \
            watchdog(k.m):
        k.m.run(until=60 * NS)
    return out.get("err") == 0


def crash_at(res: RunResult, cutter: Cutter, state: JournalState, t: int, tear: bool,
             rng: random.Random, mount: bool = True, keep_image: bool = False) -> CrashOutcome:
    """Cut power at absolute instant `t` (instants must increase from call to call); the
    write in service is torn if `tear` and the disk tears (its `tear` option)."""
    image = cutter.cut(t, tear and res.kernel.disk.tears, rng)
    state.advance(t)
    fsck = Repairer(image)
    repairs: list[str] = []
    unrepairable = None
    loss = None
    mounted: bool | None = None
    try:
        repairs = fsck.run()
    except Unrepairable as e:
        unrepairable = str(e)
    problems = fsck.before
    if unrepairable is None and fsck.final is not None:
        window, bound = policy_bound(res)
        loss = loss_report(state, image, t, res.t0_ns, window, bound, paths_of(fsck.final),
                           cutter, fsck.dup_cleared, res.kernel.syncer.running)
        if mount:
            mounted = remount(res, image)
    return CrashOutcome((t - res.t0_ns) / NS, cutter.in_service(), problems, repairs,
                        unrepairable, mounted, loss, image if keep_image else {})


def recorded_run(cfg: RunConfig) -> RunResult:
    res = run_scenario(replace(cfg, record_crash=True))
    if res.panic is not None:
        raise InputError(f"the run panicked before the crash: {res.panic.report()}")
    return res


def crash_instants(res: RunResult, n: int, rng: random.Random) -> list[int]:
    """`n` seeded instants, uniform over the workload's run, in increasing order."""
    t0 = res.t0_ns
    t1 = res.kernel.m.now
    return sorted(rng.randrange(t0 + 1, max(t0 + 2, t1 + 1)) for _ in range(n))


def instant_after_request(res: RunResult, n: int) -> int:
    """The instant the `n`th disk request of the workload completes (requests made while
    the scenario's files were set up, before the workload started, are not counted)."""
    done = sorted(e for e in res.kernel.disk.log.ends if e[0] >= res.t0_ns)
    if not 1 <= n <= len(done):
        raise InputError(f"--crash-after-request {n}: the workload completed "
                         f"{len(done)} disk requests")
    return int(done[n - 1][0])


# ---- batches (one recorded run, many crashes): the unit parallel engines run -----------------
def run_batch(point: dict[str, Any]) -> dict[str, Any]:
    """Run one recorded run and crash it `point["crashes"]` times; a summary row."""
    cfg = RunConfig(scenario=point["scenario"], policy=point["policy"],
                    protocol=point.get("protocol", "netbsd-2.0"), seed=point["seed"],
                    duration_s=point.get("duration_s"), kernel=point.get("kernel", {}),
                    policy_options=point.get("policy_options", {}))
    wall0 = time.perf_counter()
    res = recorded_run(cfg)
    rng = random.Random(f"crashtest:{point['seed']}:{point['batch']}")
    cutter = Cutter(res.kernel.disk.log)
    state = JournalState(journal_of(res.kernel))
    tear = point.get("tear", True)
    mount = point.get("mount", True)
    window, bound = policy_bound(res)
    row: dict[str, Any] = {
        "batch": point["batch"], "policy": point["policy"], "seed": point["seed"],
        "crashes": 0, "crashes_repaired": 0, "repairs": 0, "fsync_bytes_lost": 0,
        "fsync_bytes_lost_reported": 0,
        "lost_bytes": 0, "max_lost_age_s": 0.0, "over_bound_bytes": 0,
        "over_bound_queued_bytes": 0, "over_bound_failed_bytes": 0,
        "over_bound_reported_bytes": 0, "over_bound_meta_failed_bytes": 0,
        "over_bound_late_bytes": 0, "late_causes": {}, "stale_blocks": 0,
        "window_s": window, "bound_s": bound, "bugs": [], "repair_kinds": {},
        "fsync_loss_causes": {},
        "pages_dropped": res.kernel.aiodone.pages_dropped,
    }
    for t in crash_instants(res, point["crashes"], rng):
        out = crash_at(res, cutter, state, t, tear, rng, mount)
        row["crashes"] += 1
        if out.repairs:
            row["crashes_repaired"] += 1
        row["repairs"] += len(out.repairs)
        for r in out.repairs:
            kind = _repair_kind(r)
            row["repair_kinds"][kind] = row["repair_kinds"].get(kind, 0) + 1
        if out.loss is not None:
            lo = out.loss
            row["fsync_bytes_lost"] += lo.fsync_bytes_lost
            row["fsync_bytes_lost_reported"] += lo.fsync_bytes_lost_reported
            for cause, n in lo.fsync_loss_causes.items():
                row["fsync_loss_causes"][cause] = row["fsync_loss_causes"].get(cause, 0) + n
            row["lost_bytes"] += lo.lost_bytes
            row["over_bound_bytes"] += lo.over_bound_bytes
            row["over_bound_queued_bytes"] += lo.over_bound_queued_bytes
            row["over_bound_failed_bytes"] += lo.over_bound_failed_bytes
            row["over_bound_reported_bytes"] += lo.over_bound_reported_bytes
            row["over_bound_meta_failed_bytes"] += lo.over_bound_meta_failed_bytes
            row["over_bound_late_bytes"] += lo.over_bound_late_bytes
            for cause, n in lo.late_causes.items():
                row["late_causes"][cause] = row["late_causes"].get(cause, 0) + n
            row["stale_blocks"] += lo.stale_blocks
            row["max_lost_age_s"] = max(row["max_lost_age_s"], lo.max_lost_age_s)
        bug = out.bug()
        if bug and len(row["bugs"]) < 5:
            row["bugs"].append({"seed": point["seed"], "crash_s": out.crash_s, "bug": bug,
                                "losses": out.loss.fsync_losses if out.loss else []})
    row["wall_s"] = time.perf_counter() - wall0
    return row


def _repair_kind(text: str) -> str:
    """A repair line with its numbers and names taken out, to count repairs by kind:
    "inode 7: cleared (bad mode 0o1)" -> "inode N: cleared (bad mode N)"."""
    text = re.sub(r"'[^']*'", "NAME", text)
    text = re.sub(r"#\d+", "#N", text)
    return re.sub(r"\d+(/\d+)?", "N", text.replace("0o", ""))


def plan(scenario: str, policies: list[str], crashes: int, seed: int, per_run: int,
         duration_s: float | None, protocol: str, tear: bool, mount: bool,
         kernel: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The batches of a crash test: `per_run` crashes a recorded run, seeds seed, seed+1..."""
    load_scenario(scenario)          # fail early on a bad scenario
    if crashes < 1:
        raise InputError(f"--crashes: expected a positive count, got {crashes}")
    if per_run < 1:
        raise InputError(f"--per-run: expected a positive count, got {per_run}")
    sc = load_scenario(scenario)
    kernel_config(RunConfig(scenario=sc, kernel=dict(kernel or {})), sc)
    points = []
    for pol in policies:
        left = crashes
        b = 0
        while left > 0:
            n = min(per_run, left)
            points.append({"scenario": scenario, "policy": pol, "protocol": protocol,
                           "seed": seed + b, "batch": b, "crashes": n,
                           "duration_s": duration_s, "tear": tear, "mount": mount,
                           "kernel": dict(kernel or {})})
            left -= n
            b += 1
    return points


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the batches of one policy (rows in batch order)."""
    rows = sorted(rows, key=lambda r: r["batch"])
    kinds: dict[str, int] = {}
    causes: dict[str, int] = {}
    late: dict[str, int] = {}
    for r in rows:
        for k, v in r["repair_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
        for k, v in r.get("fsync_loss_causes", {}).items():
            causes[k] = causes.get(k, 0) + v
        for k, v in r.get("late_causes", {}).items():
            late[k] = late.get(k, 0) + v
    out = {
        "policy": rows[0]["policy"],
        "runs": len(rows),
        "crashes": sum(r["crashes"] for r in rows),
        "crashes_repaired": sum(r["crashes_repaired"] for r in rows),
        "repairs": sum(r["repairs"] for r in rows),
        "repair_kinds": dict(sorted(kinds.items())),
        "fsync_bytes_lost": sum(r["fsync_bytes_lost"] for r in rows),
        "fsync_bytes_lost_reported": sum(r.get("fsync_bytes_lost_reported", 0) for r in rows),
        "fsync_loss_causes": dict(sorted(causes.items())),
        "pages_dropped": sum(r.get("pages_dropped", 0) for r in rows),
        "lost_bytes": sum(r["lost_bytes"] for r in rows),
        "max_lost_age_s": max(r["max_lost_age_s"] for r in rows),
        "window_s": rows[0]["window_s"],
        "bound_s": rows[0]["bound_s"],
        "over_bound_bytes": sum(r["over_bound_bytes"] for r in rows),
        "over_bound_queued_bytes": sum(r["over_bound_queued_bytes"] for r in rows),
        "over_bound_failed_bytes": sum(r["over_bound_failed_bytes"] for r in rows),
        "over_bound_reported_bytes": sum(r.get("over_bound_reported_bytes", 0) for r in rows),
        "over_bound_meta_failed_bytes": sum(r.get("over_bound_meta_failed_bytes", 0)
                                            for r in rows),
        "over_bound_late_bytes": sum(r.get("over_bound_late_bytes", 0) for r in rows),
        "late_causes": dict(sorted(late.items())),
        "stale_blocks": sum(r["stale_blocks"] for r in rows),
        "bugs": [b for r in rows for b in r["bugs"]][:10],
        "run_wall_s": sum(r["wall_s"] for r in rows),
    }
    out["mean_lost_bytes"] = out["lost_bytes"] / max(1, out["crashes"])
    return out
