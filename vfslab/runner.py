"""Run one scenario on one emulated machine and summarise it: the pure function every command
(run, check, compare, crashtest, sweep) is built on. Same config and seed, same result.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from vfslab.dev.faults import rules_from_config
from vfslab.dev.wd import BLOCK_SECTORS
from vfslab.errors import InputError
from vfslab.failure import reported
from vfslab.kern.buf import PAGE_SIZE
from vfslab.kern.fcntl import EIO, O_CREAT, O_TRUNC, O_WRONLY
from vfslab.kern.init_main import (
    DISKS,
    MACHINE_SETTINGS,
    QUEUES,
    Kernel,
    KernelConfig,
    vfs_remountroot,
)
from vfslab.kern.kern_proc import Proc, ProcSyscalls, spawn_process
from vfslab.kern.lock import LK_EXCLUSIVE, LK_RETRY
from vfslab.kern.vfs_vnops import vn_lock
from vfslab.kern.vnode_if import VOP_BALLOC, VOP_BMAP, VOP_GETATTR
from vfslab.machine import attach, start_init
from vfslab.metrics.summary import figures, protocol_costs
from vfslab.scenario import Scenario
from vfslab.sim.panic import Panic
from vfslab.sim.watchdog import LIMIT_S, watchdog
from vfslab.tunable import check_setting, setting_scopes

NS = 1_000_000_000
MAX_DURATION_S = 1e7
SETUP_CHUNK = 64 * 1024
MAX_RUN = 1024                    # blocks asked of VOP_BMAP at a time when laying files out


@dataclass
class RunConfig:
    scenario: str | Scenario = "stream"
    protocol: str = "netbsd-2.0"
    policy: str = "syncer"
    policy_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    ncpus: int = 1
    check: bool = False
    irq_stress: float = 0.0
    duration_s: float | None = None
    invariants: bool = False
    kernel: dict[str, Any] = field(default_factory=dict)   # KernelConfig overrides
    measure_memory: bool = False
    strict: bool = False          # fio: refuse options vfslab does not model
    speed: float = 1.0            # strace: divide think times
    no_think: bool = False        # strace: drop think times
    record_crash: bool = False    # keep the journal and the disk's write log (crash tests)
    memory_every_s: float = 0.0   # soak: sample the host's memory this often (emulated)
    # progress: called with (emulated seconds done, the run's duration) as the run goes
    on_progress: Any = None
    # run on an existing image (`vfslab run --from-image`): its blocks, its size in blocks
    image: tuple[dict[int, Any], int] | None = None
    # write a Perfetto timeline of the run to this file (vfslab/trace/)
    trace: str | None = None
    # stop a run that makes no progress for this long in wall time (sim/watchdog.py; 0: off)
    watchdog_s: float = LIMIT_S


@dataclass
class RunResult:
    config: RunConfig
    scenario: Scenario
    kernel: Kernel
    summary: dict[str, Any]
    checker: Any = None
    panic: Panic | None = None
    wall_s: float = 0.0
    t0_ns: int = 0                # when the workload started (after setup)


class _EndOfRun(Exception):
    """Raised by the event that ends a run (the engine has no other way to stop)."""


def _end_of_run(_: Any) -> None:
    raise _EndOfRun


def load_scenario(spec: str | Scenario, strict: bool = False, speed: float = 1.0,
                  no_think: bool = False) -> Scenario:
    """A built-in name, a scenario .toml, `fio:JOB`, or `strace:LOG`."""
    if isinstance(spec, Scenario):
        return spec
    from vfslab.scenarios.loader import load

    return load(spec, strict, speed, no_think)


def kernel_config(cfg: RunConfig, sc: Scenario) -> KernelConfig:
    """The machine of a run: the scenario's [machine] table and the command's --set, each
    value checked against its declaration (type and range: MACHINE_SETTINGS, the kernel
    settings of vfslab.tunable), once, for the CLI, scenario files and sweeps alike."""
    kc = KernelConfig(ncpus=cfg.ncpus, seed=cfg.seed, irq_stress=cfg.irq_stress,
                      protocol=cfg.protocol, policy=cfg.policy,
                      policy_options=dict(cfg.policy_options), invariants=cfg.invariants)
    overrides = {**sc.kernel, **cfg.kernel}
    faults = overrides.pop("faults", None)
    costs = overrides.pop("costs", None)
    disk_opts: dict[str, Any] = {}
    sysctl: dict[str, Any] = {}
    for key, val in overrides.items():
        if key.startswith("disk_options."):          # --set machine.disk_options.tear=false
            disk_opts[key.partition(".")[2]] = val
            continue
        if key.partition(".")[0] in setting_scopes():  # --set ffs.write_behind=false
            sysctl[key] = check_setting(key, val)
            continue
        t = MACHINE_SETTINGS.get(key)
        if t is None:
            raise InputError(f"unknown machine setting {key!r}; expected one of "
                             f"{', '.join(sorted(MACHINE_SETTINGS))}")
        setattr(kc, key, t.check("machine", val))
    if costs is not None:
        kc.costs = costs
    if kc.disk not in DISKS:
        raise InputError(f"machine.disk: expected one of {', '.join(DISKS)}, got {kc.disk!r}")
    if kc.disk_queue not in QUEUES:
        raise InputError(f"machine.disk_queue: expected one of {', '.join(QUEUES)}, got "
                         f"{kc.disk_queue!r}")
    if kc.intr_cpu >= kc.ncpus:
        raise InputError(f"machine.intr_cpu: {kc.intr_cpu} is not one of the {kc.ncpus} "
                         f"CPUs (0 to {kc.ncpus - 1})")
    need = fs_blocks_needed(kc.fs_inodes)
    if kc.fs_blocks < need:
        raise InputError(f"machine.fs_blocks: {kc.fs_blocks} blocks cannot hold a file system "
                         f"of {kc.fs_inodes} inodes; at least {need}")
    kc.disk_options = {**kc.disk_options, **disk_opts}
    kc.sysctl = {**kc.sysctl, **sysctl}
    if faults is not None:
        if not isinstance(faults, list):
            raise InputError(f"machine.faults: expected a list of fault tables "
                             f"([{{kind = \"fraction\", fraction = 0.03, op = \"write\"}}]), "
                             f"got {faults!r}")
        rules_from_config(faults)        # each rule checked here, once, before any run
    if faults:
        kc.disk_options["faults"] = faults
    return kc


def fs_blocks_needed(ninodes: int) -> int:
    """The smallest file system mkfs can make for `ninodes`: superblock, bitmaps, inode
    table, and room for the root directory and a few files."""
    from vfslab.fs.ufs_layout import BITS, BSIZE, INODE_SIZE

    itable = -(-ninodes * INODE_SIZE // BSIZE)
    imap = -(-ninodes // BITS)
    meta = 1 + imap + itable
    bmap = -(-(meta + 64) // BITS)
    return meta + bmap + 64


def _setup(k: Kernel, sc: Scenario) -> Generator[Any, Any, None]:
    """Create the scenario's pre-existing files, write them to disk, and remount so that the
    measured run starts with a cold cache and a clean file system."""
    if not sc.setup:
        return
    proc = Proc(0, "setup")
    sys = ProcSyscalls(k, proc)
    faults = getattr(k.disk, "faults", None)
    if faults is not None:
        faults.suspended = True           # the disk fails from the run on, not in the setup
    for item in sc.setup:
        if item.is_dir:
            yield from sys.mkdir(item.path, 0o755)
            continue
        if item.link is not None:
            err = yield from sys.symlink(item.link, item.path)
            if err < 0:
                raise InputError(f"scenario {sc.name}: cannot make the link {item.path} "
                                 f"(errno {-err})")
            continue
        fd = yield from sys.open(item.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0:
            raise InputError(f"scenario {sc.name}: cannot create {item.path} (errno {-fd})")
        if not item.fill:
            if item.size > 0:
                err = yield from sys.ftruncate(fd, item.size)
                if err < 0:
                    raise InputError(f"scenario {sc.name}: cannot extend {item.path} to "
                                     f"{item.size} bytes (errno {-err})")
            yield from sys.close(fd)
            continue
        err = yield from _fill(k, proc, fd, item.size)
        if err == 0:
            err = yield from sys.ftruncate(fd, item.size)
        if err:
            raise InputError(f"scenario {sc.name}: cannot lay out {item.path} "
                             f"({item.size} bytes): errno {abs(err)}")
        yield from sys.close(fd)
    err = yield from vfs_remountroot(k)
    if faults is not None:
        faults.suspended = False
    if err:
        raise k.vfs.panic(f"remount after setup failed: {err}")


def _fill(k: Kernel, proc: Proc, fd: int, size: int) -> Generator[Any, Any, int]:
    """Lay out a file's data before the run as writing it 64 KiB at a time would have, and
    in a fraction of the time: its blocks allocated where those writes' allocations would
    have put them (VOP_BALLOC over the whole range does that), and each block's content put
    straight on the disk (Disk.preload), stamped as those writes would have stamped it, one
    version a chunk. Writing 4 GiB of fio files through the page cache took 50 s of CPU
    before the first emulated second of the job (found timing the fio examples)."""
    vp = proc.p_fd.fd_ofiles[fd].f_vp
    if size <= 0:
        return 0
    yield from vn_lock(k, vp, LK_EXCLUSIVE | LK_RETRY)
    err = yield from VOP_BALLOC(vp, 0, size)
    blocks: dict[int, int] = {}
    if not err:
        err, attrs = yield from VOP_GETATTR(vp)
        ino = attrs.get("ino", 0)
        nblk = -(-size // PAGE_SIZE)
        per_chunk = SETUP_CHUNK // PAGE_SIZE
        lbn = 0
        while lbn < nblk and not err:
            want = min(nblk - lbn, MAX_RUN) - 1
            err, _devvp, sector, run = yield from VOP_BMAP(vp, lbn, want)
            if err or sector < 0:
                err = err or EIO             # VOP_BALLOC left a hole: the FS is wrong
                break
            first = sector // BLOCK_SECTORS
            for i in range(run + 1):
                blocks[first + i] = lbn + i
            lbn += run + 1
        if not err:
            stamps = [k.next_stamp(ino) for _ in range(-(-nblk // per_chunk))]
            k.disk.preload({blk: stamps[lbn // per_chunk] for blk, lbn in blocks.items()})
    yield from k.vfs.vn_unlock(vp)
    return err


def _from_image(cfg: RunConfig) -> tuple[dict[int, Any], RunConfig]:
    """An image to run on: only one fsck finds clean (a repaired one, or one a run left
    unmounted cleanly); the machine's file system takes the image's size and inode count."""
    from dataclasses import replace

    from vfslab.fs.fsck import fsck_image
    from vfslab.fs.ufs_layout import Superblock

    assert cfg.image is not None
    store, nblocks = cfg.image
    problems = fsck_image(store, nblocks)
    if problems:
        raise InputError(f"--from-image: fsck finds {len(problems)} problem(s) ({problems[0]}"
                         f"{'; ...' if len(problems) > 1 else ''}): repair it first with "
                         f"`vfslab fsck -y`")
    sb = Superblock.unpack(store[0])
    kernel = {**cfg.kernel, "fs_blocks": nblocks, "fs_inodes": sb.ninodes}
    return dict(store), replace(cfg, kernel=kernel)


def _open_trace(k: Kernel, path: str) -> Any:
    from vfslab.trace.tracer import Tracer

    try:
        fh = open(path, "wb", buffering=1 << 20)   # noqa: SIM115 (closed by run_scenario)
    except OSError as e:
        raise InputError(f"--trace {path}: {e.strerror}") from None
    tracer = Tracer(k, fh)
    tracer.attach()
    return tracer


def _wait_all(k: Kernel, state: dict[str, int]) -> Generator[Any, Any, None]:
    """Wait for every process of the run, those forked meanwhile too (wait4), then end the
    run at that instant."""
    m = k.m
    while True:
        left = [p for p in k.procs[state["first_proc"]:] if not p.exited]
        if not left:
            break
        yield from m.tsleep(left[0], "wait4", 0)
    state["exited_at"] = m.time()
    m.at(m.time(), _end_of_run)


def run_scenario(cfg: RunConfig) -> RunResult:
    sc = load_scenario(cfg.scenario, cfg.strict, cfg.speed, cfg.no_think)
    store = None
    if cfg.image is not None:
        store, cfg = _from_image(cfg)
    kc = kernel_config(cfg, sc)
    duration = cfg.duration_s if cfg.duration_s is not None else sc.duration_s
    if not 0 < duration <= MAX_DURATION_S:
        raise InputError(f"duration must be more than 0 and at most {MAX_DURATION_S:g} s "
                         f"(115 emulated days), got {duration:g} s")
    wall0 = time.perf_counter()
    if cfg.measure_memory:
        tracemalloc.start()
    machine: list[Kernel] = []

    def identity() -> str:
        return (f"{sc.name}, policy {kc.policy}, protocol {kc.protocol}, seed {kc.seed}")

    def clock() -> int | None:
        return machine[0].m.now if machine else None

    with reported(identity, clock):
        return _run(cfg, sc, kc, store, duration, wall0, machine)


def _run(cfg: RunConfig, sc: Scenario, kc: KernelConfig, store: dict[int, Any] | None,
         duration: float, wall0: float, machine: list[Kernel]) -> RunResult:
    """run_scenario's body, once the configuration is checked; `machine` is told the Kernel
    as soon as there is one (for the emulated time of a failure)."""
    k = Kernel(kc)
    machine.append(k)
    attach(k, store)
    k.metrics.memory_every_ns = int(cfg.memory_every_s * NS)
    if cfg.on_progress is not None:
        k.metrics.on_sample = lambda ns: cfg.on_progress(ns / NS, duration)
    if cfg.record_crash:
        from vfslab.crash.journal import Journal
        from vfslab.dev.wd import WriteLog

        k.journal = Journal()
        k.notify.attach(k.journal)
        k.disk.log = WriteLog(k.disk.store)
    tracer = _open_trace(k, cfg.trace) if cfg.trace else None
    checker = None
    if cfg.check:
        from vfslab.check.checker import Checker
        from vfslab.kern.guards import resolve

        checker = Checker(k.m)
        glocks = {**k.vfs.global_locks(), **k.proto.global_locks(),
                  "bqueue_slock": k.bio.bqueue_slock}
        checker.install(resolve(k.proto.guard_overrides), glocks)
        k.m.checker = checker
    state: dict[str, int] = {}

    def then(k: Kernel) -> Generator[Any, Any, None]:
        yield from _setup(k, sc)
        state["t0"] = k.m.time()
        k.metrics.start()
        state["first_proc"] = len(k.procs)
        for ps in sc.processes:
            spawn_process(k, ps.name, ps.body, k.m.random(f"proc:{ps.name}"), ps.start_ns)
        # the run ends `duration` after the workload starts, whatever setup took; a replay
        # ends when its processes have exited, the duration being a cap
        k.m.at(state["t0"] + round(duration * NS), _end_of_run)
        if sc.until_exit:
            k.m.spawn("replay-wait", _wait_all(k, state))

    start_init(k, then)
    panic: Panic | None = None
    m = k.m
    try:
        with watchdog(m, cfg.watchdog_s):
            try:
                m.run()
            except _EndOfRun:
                m.run(until=m.now)             # what else is due at that very instant
    except Panic as p:
        panic = p
        if checker is not None:
            checker.record_panic(p)
    finally:
        if checker is not None:
            checker.uninstall()
            k.m.checker = None
        if tracer is not None:
            tracer.close()
            tracer.file.close()
    k.policy.check_api_use()     # a generator method dropped unrun in the run's last moments
    k.metrics.stop()
    peak_mem = 0
    if cfg.measure_memory:
        peak_mem = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    wall = time.perf_counter() - wall0
    summary = summarize(k, sc, state.get("t0", 0), duration, panic)
    if sc.until_exit:
        unfinished = [p.p_comm for p in k.procs[state.get("first_proc", 0):] if not p.exited]
        completion = {"cut": bool(unfinished) and panic is None,
                      "unfinished_processes": unfinished, "cap_s": duration}
        summary["completion"] = completion
        stats = sc.notes.get("replay_stats")
        if stats is not None:
            summary["replay"] = {**stats.summary(), **completion}
    if "fio_errors" in sc.notes:
        summary["fio"] = {"errors": list(sc.notes["fio_errors"])}
    summary["wall_s"] = wall
    if tracer is not None:
        summary["trace"] = {"file": cfg.trace, **tracer.summary()}
    if cfg.measure_memory:
        summary["peak_python_bytes"] = peak_mem
    if k.metrics.memory:
        summary["memory"] = memory_summary(k.metrics.memory)
    return RunResult(cfg, sc, k, summary, checker, panic, wall, state.get("t0", 0))


def memory_summary(samples: list[tuple[float, int, int, int]]) -> dict[str, Any]:
    """Is memory flat? Growth is measured from the end of the first quarter (warm-up: the
    page cache and buffer cache fill) to the end, beside the growth of the emulated disk's
    content (bounded by the disk's size, not a leak)."""
    warm = samples[len(samples) // 4]
    last = samples[-1]
    return {
        "samples": [list(s) for s in samples],
        "peak_rss_bytes": max(s[1] for s in samples),
        "warm_at_s": warm[0],
        "rss_growth_after_warmup_bytes": last[1] - warm[1],
        "python_blocks_growth_after_warmup": last[2] - warm[2],
        "disk_blocks_held": last[3],
        "disk_blocks_growth_after_warmup": last[3] - warm[3],
    }


def summarize(k: Kernel, sc: Scenario, t0: int, duration: float, panic: Panic | None
              ) -> dict[str, Any]:
    procs = k.procs
    disk = k.disk
    met = k.metrics
    lat = met.latency_summary()
    ops = sum(p.nsyscalls for p in procs)
    m = k.m
    elapsed = max(1, m.now - t0) / NS
    out: dict[str, Any] = {
        "scenario": sc.name,
        "warnings": list(sc.warnings),
        "protocol": k.cfg.protocol,
        "policy": k.cfg.policy,
        "seed": k.cfg.seed,
        "cpus": k.cfg.ncpus,
        "emulated_s": elapsed,
        "operations": ops,
        # failed calls by call and errno, and their total
        "syscall_errors": {op: dict(sorted(c.items())) for op, c in sorted(met.errors.items())},
        "syscall_errors_total": sum(sum(c.values()) for c in met.errors.values()),
        # getnewvnode found no vnode (2.0's tablefull("vnode"): the call got ENFILE)
        "vnode_table_full": k.vfs.stats_enfile,
        "bytes_read": sum(p.bytes_read for p in procs),
        "bytes_written": sum(p.bytes_written for p in procs),
        "disk_bytes_read": disk.stats.bytes_read - met.disk0[0],
        "disk_bytes_written": disk.stats.bytes_written - met.disk0[1],
        "disk_requests": disk.stats.reads + disk.stats.writes - met.disk0[2],
        "dirty_pages_end": k.uvm.ndirty,
        "dirty_bufs_end": k.bio.ndirty,
        "latency": {op: lat[op] for op in ("read", "write", "fsync") if op in lat},
        "window_s": k.policy.window_s(),
        "policy_report": k.policy.report(),
        "figures": figures(k, elapsed),
        "costs": protocol_costs(k, elapsed, ops),
        "engine_events": m.events_processed(),
        "context_switches": m.stats.nswitch,
        "interrupts": sum(r[0] for r in m.intr_latency().values()),
        "panic": panic.report() if panic is not None else None,
    }
    if k.invariants is not None:
        out["invariant_checks"] = k.invariants.checks
    return out
