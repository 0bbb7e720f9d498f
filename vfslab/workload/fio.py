"""fio job files as vfslab scenarios.

The reader takes fio's syntax ([global] and job sections, inheritance, ${VAR}, size and time
suffixes, `include`) and the options that describe a workload for a page cache; each job (and
each of its numjobs clones) becomes a process that issues the I/O through vfslab's system
calls. Options that do not describe the workload (reporting, CPU affinity, ...) or that vfslab
does not model are named together in one warning; `strict=True` makes that an error.

Units follow fio: sizes are base 2 (k = 1024) unless kb_base=1000; runtime and startdelay are
in seconds, thinktime in microseconds, unless a suffix says otherwise.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vfslab.errors import InputError
from vfslab.kern.fcntl import O_CREAT, O_DIRECT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY
from vfslab.scenario import ProcessSpec, Scenario, SetupItem

ROOT = "/fio"
S = 1_000_000_000
END_GRACE_S = 300.0     # after the longest runtime: time for end_fsync and closes
SYNC_ENGINES = {"sync", "psync", "vsync", "pvsync", "pvsync2", "mmap", "falloc",
                "filecreate", "filestat", "filedelete", "ftruncate"}
ASYNC_ENGINES = {"libaio", "io_uring", "posixaio", "solarisaio", "windowsaio", "aio"}
MODELLED = {
    "rw", "readwrite", "rwmixread", "rwmixwrite", "bs", "blocksize", "bssplit",
    "blocksize_range", "bsrange", "size", "filesize", "nrfiles", "filename", "directory",
    "numjobs", "rate", "rate_iops", "runtime", "time_based", "loops", "startdelay",
    "thinktime", "thinktime_blocks", "fsync", "fdatasync", "end_fsync", "fsync_on_close",
    "direct", "buffered", "ioengine", "iodepth", "create_on_open", "overwrite",
    "file_service_type", "name", "stonewall", "wait_for_previous", "new_group", "offset",
    "random_distribution", "norandommap", "randrepeat", "randseed", "kb_base",
    "description", "group_reporting", "thread", "invalidate", "unlink", "ramp_time",
}
RW_MODES = {"read", "write", "randread", "randwrite", "rw", "readwrite", "randrw"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INLINE_COMMENT = re.compile(r"\s+[;#]")
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.I)
_TIME = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(us|usec|ms|msec|s|sec|m|min|h|d)?\s*$", re.I)
_TIME_NS = {"us": 10**3, "usec": 10**3, "ms": 10**6, "msec": 10**6, "s": S, "sec": S,
            "m": 60 * S, "min": 60 * S, "h": 3600 * S, "d": 86400 * S}


@dataclass
class Job:
    name: str
    opts: dict[str, str]
    lines: dict[str, int]
    line: int
    group: int = 0


@dataclass
class FioFile:
    jobs: list[Job]
    warnings: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)   # (job, why)


def parse_size(text: str, kb_base: int, where: tuple[str, int], what: str) -> int:
    t = text.strip()
    if t.endswith("%"):
        raise InputError(f"{what}: percentages of a device are not modelled, got {text!r}",
                         *where)
    m = _SIZE.match(t)
    if not m:
        raise InputError(f"{what}: expected a size like 4k, 64KiB or 1g, got {text!r}", *where)
    num, unit, iec, _b = m.groups()
    unit = unit.lower()
    if not unit:
        return int(float(num))
    exp = "kmgtp".index(unit) + 1
    base = 1024 if (iec or kb_base == 1024) else 1000
    if kb_base == 1000 and not iec:
        base = 1000
    return int(float(num) * base ** exp)


def parse_time_ns(text: str, default_unit_ns: int, where: tuple[str, int], what: str) -> int:
    m = _TIME.match(text)
    if not m:
        raise InputError(f"{what}: expected a time like 30, 500ms or 2m, got {text!r}", *where)
    num, unit = m.groups()
    return int(float(num) * (_TIME_NS[unit.lower()] if unit else default_unit_ns))


def read_jobfile(path: str, env: dict[str, str] | None = None, text: str | None = None,
                 strict: bool = False, _including: tuple[str, ...] = ()) -> FioFile:
    """Parse a job file into jobs with their inherited options (`include` files too; an
    include cycle is an error at the include that closes it)."""
    env = dict(os.environ) if env is None else env
    if text is None:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError as e:
            raise InputError(f"cannot read fio job file: {e.strerror}", path) from None
    globals_: dict[str, str] = {}
    glines: dict[str, int] = {}
    jobs: list[Job] = []
    cur: Job | None = None
    in_global = False
    group = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("include "):
            inc = Path(path).parent / line.split(None, 1)[1].strip()
            chain = (*_including, str(Path(path).resolve()))
            if str(inc.resolve()) in chain:
                names = " -> ".join(Path(c).name for c in (*chain, str(inc.resolve())))
                raise InputError(f"include cycle: {names}", path, lineno)
            sub = read_jobfile(str(inc), env, strict=strict, _including=chain)
            jobs.extend(sub.jobs)
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise InputError(f"expected a section header like [job], got {line!r}", path,
                                 lineno)
            name = line[1:-1].strip()
            if name == "global":
                in_global = True
                cur = None
            else:
                in_global = False
                cur = Job(name, dict(globals_), dict(glines), lineno)
                jobs.append(cur)
            continue
        line = _INLINE_COMMENT.split(line, maxsplit=1)[0].strip()
        key, eq, val = line.partition("=")
        key = key.strip().lower()
        val = val.strip()
        if not re.fullmatch(r"[a-z0-9_]+", key):
            raise InputError(f"expected option=value or [section], got {line!r}", path, lineno)

        def subst(mm: re.Match[str], ln: int = lineno) -> str:
            var = mm.group(1)
            if var not in env:
                raise InputError(f"${{{var}}} is not set in the environment", path, ln)
            return env[var]

        val = _VAR.sub(subst, val)
        if not eq:
            val = "1"
        if in_global:
            globals_[key] = val
            glines[key] = lineno
        elif cur is None:
            raise InputError(f"option {key!r} outside any section", path, lineno)
        else:
            cur.opts[key] = val
            cur.lines[key] = lineno
            if key in ("stonewall", "wait_for_previous", "new_group") and val != "0":
                group += 1
            cur.group = group
    out = FioFile(jobs)
    unknown: dict[str, int] = {}
    for job in jobs:
        for k in job.opts:
            if k not in MODELLED:
                unknown.setdefault(k, job.lines.get(k, job.line))
    if unknown:
        names = ", ".join(sorted(unknown))
        if strict:
            first = min(unknown.values())
            raise InputError(f"unmodelled fio options: {names}", path, first)
        out.warnings.append(f"{path}: unmodelled fio options: {names}")
    return out


@dataclass
class JobPlan:
    """A job turned into numbers."""

    name: str
    files: list[str]
    filesize: int
    total: int
    read_pct: int
    random: bool
    bs_choices: list[tuple[int, int]]      # (size, weight)
    rate: float
    rate_iops: float
    runtime_ns: int
    time_based: bool
    loops: int
    start_ns: int
    think_ns: int
    think_blocks: int
    fsync: int
    fdatasync: int
    end_fsync: bool
    fsync_on_close: bool
    direct: bool
    offset: int
    file_service: str
    group: int
    threads: int
    create_on_open: bool
    seed: int
    file_op: str = ""          # filecreate / filestat / filedelete engines: one op per file
    shared_files: bool = False  # filename= given: every clone uses the same files


def plan(job: Job, path: str, default_runtime_s: float) -> JobPlan:
    o = job.opts

    def where(k: str) -> tuple[str, int]:
        return (path, job.lines.get(k, job.line))

    def whole(k: str, v: str) -> int:
        try:
            return int(v)
        except ValueError:
            raise InputError(f"{k}: expected a whole number, got {v!r}", *where(k)) from None

    def num(k: str, default: str = "0") -> int:
        return whole(k, o.get(k, default))

    kb_base = int(o.get("kb_base", "1024")) if o.get("kb_base", "1024").isdigit() else 1024
    rw = o.get("rw", o.get("readwrite", "read")).split(":")[0].lower()
    if rw in ("trim", "randtrim", "trimwrite", "randtrimwrite"):
        raise _Refuse(f"rw={rw}: discard/trim is not modelled (no TRIM in a 2004 FFS)")
    if rw not in RW_MODES:
        raise InputError(f"rw: expected one of {', '.join(sorted(RW_MODES))}, got {rw!r}",
                         *where("rw"))
    engine = o.get("ioengine", "psync").split(":")[0].lower()
    file_op = engine if engine in ("filecreate", "filestat", "filedelete") else ""
    threads = 1
    if engine in ASYNC_ENGINES:
        threads = max(1, num("iodepth", "1"))
    elif engine not in SYNC_ENGINES:
        raise _Refuse(f"ioengine={engine} is not a file I/O engine vfslab models")
    for k in ("rwmixread", "rwmixwrite"):
        if k in o and not 0 <= num(k) <= 100:
            raise InputError(f"{k}: expected a percentage from 0 to 100, got {o[k]!r}",
                             *where(k))
    if "iodepth" in o and num("iodepth") < 1:
        raise InputError(f"iodepth: expected at least 1, got {o['iodepth']!r}",
                         *where("iodepth"))
    if rw in ("read", "write", "randread", "randwrite"):
        read_pct = 100 if "read" in rw else 0
    else:
        read_pct = num("rwmixread", str(100 - num("rwmixwrite", "50")))
    bs_choices: list[tuple[int, int]] = []
    if "bssplit" in o:
        for part in o["bssplit"].split(",")[0].split(":"):
            bsz, _, pct = part.partition("/")
            bs_choices.append((parse_size(bsz, kb_base, where("bssplit"), "bssplit"),
                               whole("bssplit", pct or "1") or 1))
    elif "blocksize_range" in o or "bsrange" in o:
        key = "blocksize_range" if "blocksize_range" in o else "bsrange"
        lo, _, hi = o[key].split(",")[0].partition("-")
        a = parse_size(lo, kb_base, where(key), key)
        b = parse_size(hi or lo, kb_base, where(key), key)
        step = 4096 if a % 4096 == 0 else 512
        bs_choices = [(x, 1) for x in range(a, b + 1, step)] or [(a, 1)]
    else:
        bs_text = o.get("bs", o.get("blocksize", "4k")).split(",")[0] or "4k"
        bs_choices = [(parse_size(bs_text, kb_base, where("bs"), "bs"), 1)]
    if any(b <= 0 for b, _ in bs_choices):
        raise InputError("bs: block sizes must be positive", *where("bs"))
    nrfiles = max(1, num("nrfiles", "1"))
    directory = o.get("directory", "").split(":")[0]
    base = ROOT + ("/" + directory.strip("/").replace("/", "_") if directory else "")
    if "filename" in o:
        names = [n for n in o["filename"].split(":") if n]
        files = [f"{base}/{Path(n).name or 'file'}" for n in names]
    else:
        files = [f"{base}/{job.name}.0.{i}" for i in range(nrfiles)]
    size = parse_size(o["size"], kb_base, where("size"), "size") if "size" in o else 0
    filesize = parse_size(o["filesize"].split("-")[0], kb_base, where("filesize"),
                          "filesize") if "filesize" in o else 0
    if not size and not filesize:
        size = 64 * 1024 * 1024
    if not filesize:
        filesize = max(4096, size // len(files))
    if not size:
        size = filesize * len(files)
    runtime = parse_time_ns(o["runtime"], S, where("runtime"), "runtime") if "runtime" in o \
        else int(default_runtime_s * S)
    from vfslab.fs.ufs_layout import MAXFILESIZE

    if offset_of(o, kb_base, where) + filesize > MAXFILESIZE:
        raise InputError(f"size: a file of {(offset_of(o, kb_base, where) + filesize) / 2**30:.1f} "
                         f"GiB is larger than vfslab's FFS allows ({MAXFILESIZE / 2**30:.1f} "
                         f"GiB: 4 KiB blocks, no triple indirect); use a smaller size or more "
                         f"files (nrfiles)", *where("size" if "size" in o else "filesize"))
    if max(b for b, _ in bs_choices) > filesize:
        # fio: "min block size larger than file size" (it refuses the job)
        key = "bs" if "bs" in o or "blocksize" in o else "bssplit"
        raise InputError(f"{key}: a block of {max(b for b, _ in bs_choices):,} bytes is larger "
                         f"than the file ({filesize:,} bytes)", *where(key if key in o else
                                                                        "size"))

    rate = 0.0
    if "rate" in o:
        r = o["rate"].split(",")
        rate = float(parse_size(r[0] or r[-1], kb_base, where("rate"), "rate"))
    return JobPlan(
        name=job.name, files=files, filesize=filesize, total=size * max(1, num("loops", "1")),
        read_pct=read_pct, random=rw.startswith("rand"), bs_choices=bs_choices, rate=rate,
        rate_iops=float(whole("rate_iops", o.get("rate_iops", "0").split(",")[0] or "0")),
        runtime_ns=runtime, time_based="time_based" in o and o["time_based"] != "0",
        loops=max(1, num("loops", "1")),
        start_ns=parse_time_ns(o.get("startdelay", "0").split("-")[0], S, where("startdelay"),
                               "startdelay"),
        think_ns=parse_time_ns(o.get("thinktime", "0"), 1000, where("thinktime"), "thinktime"),
        think_blocks=max(1, num("thinktime_blocks", "1")), fsync=num("fsync"),
        fdatasync=num("fdatasync"), end_fsync=num("end_fsync") != 0,
        fsync_on_close=num("fsync_on_close") != 0,
        direct=num("direct") != 0 or o.get("buffered", "1") == "0",
        offset=parse_size(o.get("offset", "0"), kb_base, where("offset"), "offset")
        if not o.get("offset", "0").endswith("%") else 0,
        file_service=o.get("file_service_type", "roundrobin").split(":")[0],
        group=job.group, threads=threads, create_on_open=num("create_on_open") != 0,
        seed=num("randseed", "0"), file_op=file_op, shared_files="filename" in o)


def offset_of(o: dict[str, str], kb_base: int, where: Any) -> int:
    v = o.get("offset", "0")
    return 0 if v.endswith("%") else parse_size(v, kb_base, where("offset"), "offset")


class _Refuse(Exception):
    """A job vfslab does not model, with the reason."""


def job_body(p: JobPlan, share: int, done: list[int], waits: list[int], part: int = 0,
             errors: list[dict[str, str]] | None = None, label: str = "") -> Any:
    """The process body of one clone (or one of an async job's iodepth threads). An I/O
    error stops it, as fio's continue_on_error=none stops a job, and is recorded in
    `errors` (job, call, errno)."""
    from vfslab.kern.fcntl import ERRNO_NAMES

    def failed(call: str, rv: int) -> None:
        if errors is not None:
            errors.append({"job": label or p.name, "call": call,
                           "errno": ERRNO_NAMES.get(-rv, f"errno {-rv}")})

    def body(sys: Any, rng: random.Random) -> Generator[Any, Any, None]:
        if p.group:
            while sum(done[g] < waits[g] for g in range(p.group)) > 0:
                yield from sys.nanosleep(10_000_000)
        if p.file_op:
            for f in p.files:
                if p.file_op == "filecreate":
                    fd = yield from sys.open(f, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                    if fd >= 0:
                        yield from sys.close(fd)
                elif p.file_op == "filestat":
                    yield from sys.stat(f)
                else:
                    yield from sys.unlink(f)
            done[p.group] += 1
            return
        flags = (O_RDWR if p.read_pct else O_WRONLY) | O_CREAT | (O_DIRECT if p.direct else 0)
        if p.read_pct == 100:
            flags = O_RDONLY | (O_DIRECT if p.direct else 0)
        fds = []
        for f in p.files:
            fd = yield from sys.open(f, flags, 0o644)
            if fd < 0:
                fd = yield from sys.open(f, O_RDWR | O_CREAT | O_TRUNC, 0o644)
            if fd < 0:
                failed("open", fd)
            fds.append(fd)
        if any(fd < 0 for fd in fds):
            done[p.group] += 1
            return
        start = sys.now()
        # an asynchronous job's iodepth threads share one stream: each takes its own stretch
        stretch = (p.filesize // max(1, p.threads)) // 4096 * 4096
        offs = [p.offset + part * stretch] * len(fds)
        total = share
        moved = 0
        n = 0
        writes = 0
        cur = 0
        sizes = [b for b, _ in p.bs_choices]
        weights = [w for _, w in p.bs_choices]
        while True:
            now = sys.now()
            if now - start >= p.runtime_ns:
                break
            if not p.time_based and moved >= total:
                break
            if p.file_service == "random":
                cur = rng.randrange(len(fds))
            elif p.file_service != "sequential" or offs[cur] >= p.offset + p.filesize:
                cur = n % len(fds) if p.file_service == "roundrobin" else cur
            bs = sizes[0] if len(sizes) == 1 else rng.choices(sizes, weights)[0]
            span = max(bs, p.filesize - p.offset)
            if p.random:
                off = p.offset + rng.randrange(max(1, span // bs)) * bs
            else:
                off = offs[cur]
                if off + bs > p.offset + p.filesize:
                    off = p.offset
                offs[cur] = off + bs
            is_read = p.read_pct == 100 or (p.read_pct and rng.randrange(100) < p.read_pct)
            fd = fds[cur]
            if is_read:
                got = yield from sys.pread(fd, bs, off)
                call = "pread"
            else:
                got = yield from sys.pwrite(fd, bs, off)
                call = "pwrite"
                writes += 1
                if got >= 0 and p.fsync and writes % p.fsync == 0:
                    got = yield from sys.fsync(fd)
                    call = "fsync"
                if got >= 0 and p.fdatasync and writes % p.fdatasync == 0:
                    got = yield from sys.fdatasync(fd)
                    call = "fdatasync"
            if got < 0:
                failed(call, got)
                break
            moved += bs
            n += 1
            if p.think_ns and n % p.think_blocks == 0:
                yield from sys.nanosleep(p.think_ns)
            if p.rate or p.rate_iops:
                due = start + int(moved * S / p.rate) if p.rate else \
                    start + int(n * S / p.rate_iops)
                now = sys.now()
                if due > now:
                    yield from sys.nanosleep(due - now)
        for fd in fds:
            if p.end_fsync or p.fsync_on_close:
                rv = yield from sys.fsync(fd)
                if rv < 0:
                    failed("fsync", rv)
            yield from sys.close(fd)
        done[p.group] += 1

    return body


def to_scenario(path: str, text: str | None = None, env: dict[str, str] | None = None,
                strict: bool = False, default_runtime_s: float = 30.0) -> Scenario:
    """A job file as a scenario: one process per job clone (per iodepth thread for async
    engines); files that must exist before the run go into setup."""
    ff = read_jobfile(path, env, text, strict)
    if not ff.jobs:
        raise InputError("expected at least one job section", path, 0)
    procs: list[ProcessSpec] = []
    setup: dict[str, SetupItem] = {}
    warnings = list(ff.warnings)
    plans: list[tuple[JobPlan, int]] = []
    for job in ff.jobs:
        try:
            p = plan(job, path, default_runtime_s)
        except _Refuse as why:
            ff.refused.append((job.name, str(why)))
            continue
        nj = job.opts.get("numjobs", "1")
        if not nj.isdigit() or int(nj) < 1:
            raise InputError(f"numjobs: expected a whole number of at least 1, got {nj!r}",
                             path, job.lines.get("numjobs", job.line))
        numjobs = int(nj)
        plans.append((p, numjobs))
    if not plans:
        reasons = "; ".join(f"[{j}] {w}" for j, w in ff.refused)
        raise InputError(f"no job vfslab can model: {reasons}", path, ff.jobs[0].line)
    ngroups = max(p.group for p, _ in plans) + 1
    done = [0] * ngroups
    waits: list[int] = [0] * ngroups
    errors: list[dict[str, str]] = []
    sizes: dict[str, int] = {}         # every file a job uses, with the size it reaches
    for p, numjobs in plans:
        if p.threads > 1:
            warnings.append(f"{path}: [{p.name}] asynchronous engine run as {p.threads} "
                            f"synchronous threads (iodepth)")
        for clone in range(numjobs):
            files = p.files if clone == 0 or p.shared_files else \
                [f.replace(".0.", f".{clone}.") for f in p.files]
            cp = JobPlan(**{**p.__dict__, "files": files})
            for f in files:
                sizes[f] = max(sizes.get(f, 0), p.offset + p.filesize)
            if (p.read_pct or (p.random and not p.create_on_open)) and \
                    p.file_op != "filecreate":
                # fio lays out a file a job reads by writing it, and preallocates (here:
                # extends) one it only writes at random
                for f in files:
                    want = p.offset + p.filesize
                    old = setup.get(f)
                    fill = bool(p.read_pct) or (old is not None and old.fill)
                    setup[f] = SetupItem(f, max(want, old.size if old else 0), fill=fill)
            for t in range(p.threads):
                share = cp.total // p.threads
                label = f"{p.name}.{clone}" + (f".{t}" if p.threads > 1 else "")
                procs.append(ProcessSpec(label, job_body(cp, share, done, waits, t, errors,
                                                         label), p.start_ns))
                waits[p.group] += 1
    dirs: set[str] = set()
    # string operations, not Path: filecreate-ioengine.fio names 500,000 files
    for parent in {os.path.dirname(f) for f in [*setup, *[f for p, _ in plans for f in p.files]]}:
        d = parent
        while d not in ("/", "") and d not in dirs:
            dirs.add(d)
            d = os.path.dirname(d)
    items = [SetupItem(d, 0, True) for d in sorted(dirs, key=lambda d: (d.count("/"), d))]
    runtime = max((p.runtime_ns + p.start_ns for p, _ in plans), default=30 * S) / S
    sc = Scenario(f"fio:{Path(path).name}", f"fio job file {path}", procs,
                  [*items, *setup.values()], duration_s=runtime + END_GRACE_S,
                  warnings=warnings)
    # the jobs end at their runtime and then run end_fsync: the run ends when they have
    sc.until_exit = True
    # a file system big enough for the jobs' files (4 KiB blocks, 2% for indirect blocks
    # and directories, 64 MiB of room); `--set machine.fs_blocks` still decides
    need = sum(sizes.values()) * 102 // 100 // 4096 + (64 << 20) // 4096
    if need > 1 << 20:
        sc.kernel["fs_blocks"] = min(need, (1 << 32) - 1)
    sc.notes["refused"] = ff.refused
    sc.notes["fio_errors"] = errors
    return sc
