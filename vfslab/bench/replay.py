"""`vfslab bench replay`: a long strace log parsed and replayed, against the time it takes
Python only to read the same log's lines (the peer), and the peak memory against the log's
size. The log is a real one (sqlite3 with a rollback journal, recorded by `vfslab record`,
vfslab/bench/data) repeated, each copy in its own directory and later in time, to
`--lines` lines. The target (issue #16): a million lines in at most 20 s and 700 MB.

Each measurement runs in a fresh process so that its peak RSS is its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

DATA = Path(__file__).parent / "data" / "sqlite3-journal.strace"
_TS = re.compile(r"^(\d+) (\d\d):(\d\d):(\d\d)\.(\d{6}) ")


def build_log(lines: int, out: Path) -> int:
    """Write `lines` lines of the sample log repeated; returns the count written."""
    src = DATA.read_text().splitlines()
    first = _TS.match(src[0])
    last = _TS.match(src[-1])
    assert first and last

    def us(m: re.Match[str]) -> int:
        return ((int(m.group(2)) * 60 + int(m.group(3))) * 60 + int(m.group(4))) * 10**6 + \
            int(m.group(5))

    span = us(last) - us(first) + 1000
    n = 0
    with out.open("w") as fh:
        rep = 0
        while n < lines:
            shift = rep * span
            for line in src:
                m = _TS.match(line)
                if m is None:
                    continue
                t = us(m) + shift
                h, rest = divmod(t, 3600 * 10**6)
                mi, rest = divmod(rest, 60 * 10**6)
                sec, frac = divmod(rest, 10**6)
                body = line[m.end():].replace("/work/db", f"/work/db{rep}")
                fh.write(f"{1000 + rep} {h % 24:02d}:{mi:02d}:{sec:02d}.{frac:06d} {body}\n")
                n += 1
                if n >= lines:
                    break
            rep += 1
    return n


_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
if sys.argv[1] == "peer":
    n = 0
    with open(sys.argv[2]) as fh:
        for line in fh:
            n += len(line.split(" ", 3))
    out = {"read_s": time.perf_counter() - t0}
else:
    from vfslab.runner import RunConfig, run_scenario
    from vfslab.workload.strace import to_scenario
    sc = to_scenario(sys.argv[2])
    t1 = time.perf_counter()
    res = run_scenario(RunConfig(scenario=sc, kernel={"disk": "ssd"}, duration_s=86400))
    rp = res.summary["replay"]
    out = {"parse_s": t1 - t0, "replay_s": time.perf_counter() - t1,
           "calls": rp["calls"], "diverged": rp["diverged"], "cut": rp["cut"]}
out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
"""


def _child(kind: str, log: Path) -> dict[str, float]:
    r = subprocess.run([sys.executable, "-c", _CHILD, kind, str(log)], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        raise click.ClickException(f"the {kind} run failed: {r.stderr[-400:]}")
    out: dict[str, float] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


@click.command()
@click.option("--lines", default=1_000_000, show_default=True, help="lines in the log")
@click.option("--json", "as_json", is_flag=True)
def replay(lines: int, as_json: bool) -> None:
    """A long strace log parsed and replayed, against reading its lines."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "long.strace"
        t0 = time.perf_counter()
        n = build_log(lines, log)
        build_s = time.perf_counter() - t0
        size = log.stat().st_size
        peer = _child("peer", log)
        ours = _child("replay", log)
    total = ours["parse_s"] + ours["replay_s"]
    doc = {"lines": n, "log_bytes": size, "build_s": build_s, "peer_read_s": peer["read_s"],
           **ours, "total_s": total, "x_peer": total / peer["read_s"],
           "rss_over_log": ours["peak_rss_bytes"] / size,
           "target": {"total_s": 20.0, "peak_rss_bytes": 700 * 10**6}}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    mb = 1e6
    click.echo(f"log: {n:,} lines, {size / mb:,.1f} MB ({ours['calls']:,} file system calls; "
               f"{ours['diverged']:,} diverged, cut: {ours['cut']})")
    click.echo(f"parse {ours['parse_s']:.2f} s + replay {ours['replay_s']:.2f} s = "
               f"{total:.2f} s (target 20 s); reading the lines alone: {peer['read_s']:.2f} s "
               f"({doc['x_peer']:.1f}x)")
    click.echo(f"peak memory {ours['peak_rss_bytes'] / mb:,.0f} MB (target 700 MB), "
               f"{doc['rss_over_log']:.1f}x the log's size; reading alone "
               f"{peer['peak_rss_bytes'] / mb:,.0f} MB")
