"""fio job files: the reader's syntax and options, runs against the kernel, and the example
job files that fio ships (Debian's fio-examples: .ci/run installs it)."""

from __future__ import annotations

import glob
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from vfslab.errors import InputError
from vfslab.runner import RunConfig, run_scenario
from vfslab.workload.fio import read_jobfile, to_scenario

EXAMPLES = sorted(glob.glob("/usr/share/doc/fio/examples/*.fio"))


def sc_of(text: str, **kw: Any) -> Any:
    return to_scenario("job.fio", text=text, env={"SIZE": "2m"}, **kw)


def run_text(text: str, seconds: float = 2.0) -> Any:
    return run_scenario(RunConfig(scenario=sc_of(text), duration_s=seconds,
                                  kernel={"fs_blocks": 1 << 16, "disk": "ssd"}))


def test_global_inheritance_vars_suffixes_and_comments() -> None:
    ff = read_jobfile("job.fio", {"SIZE": "2m"}, text="""
; a comment
[global]
bs=8k
size=${SIZE}
[a]
rw=write   ; inline comment
[b]
bs=16k
rw=randread
""")
    a, b = ff.jobs
    assert a.opts["bs"] == "8k" and a.opts["rw"] == "write" and a.opts["size"] == "2m"
    assert b.opts["bs"] == "16k" and b.line == 8 and b.lines["bs"] == 9
    sc = sc_of("[j]\nrw=randread\nsize=1m\nbs=4k\n")
    assert sc.setup[-1].size == 1 << 20


def test_kb_base_1000() -> None:
    sc = sc_of("[j]\nrw=randread\nsize=1m\nkb_base=1000\n")
    assert sc.setup[-1].size == 1_000_000


@pytest.mark.parametrize("text,line,words", [
    ("[j]\nrw=sideways\n", 2, "rw: expected one of"),
    ("[j]\nbs=lots\n", 2, "bs: expected a size"),
    ("size=1m\n", 1, "outside any section"),
    ("[j\n", 1, "section header"),
    ("[j]\nthis is not an option\n", 2, "option=value"),
    ("[j]\nsize=${NOPE}\n", 2, "not set"),
    ("[j]\nruntime=forever\n", 2, "runtime"),
])
def test_malformed_job_files_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(InputError) as ei:
        sc_of(text)
    assert ei.value.file == "job.fio" and ei.value.line == line and words in ei.value.message


def test_unmodelled_options_warn_once_and_strict_refuses() -> None:
    text = "[j]\nrw=write\ncpus_allowed=0\nverify=md5\nsize=1m\n"
    sc = sc_of(text)
    assert sc.warnings == ["job.fio: unmodelled fio options: cpus_allowed, verify"]
    with pytest.raises(InputError, match="unmodelled fio options") as ei:
        sc_of(text, strict=True)
    assert ei.value.line == 3


def test_numjobs_async_engines_and_refusals() -> None:
    sc = sc_of("[j]\nrw=write\nnumjobs=3\nsize=1m\n[k]\nrw=read\nioengine=libaio\n"
               "iodepth=4\nsize=1m\n[n]\nioengine=net\n")
    names = [p.name for p in sc.processes]
    assert names[:3] == ["j.0", "j.1", "j.2"] and len([n for n in names if n.startswith("k")]) == 4
    assert any("4 synchronous threads" in w for w in sc.warnings)
    assert sc.notes["refused"] == [("n", "ioengine=net is not a file I/O engine vfslab models")]


def test_a_write_job_with_fsync_runs_and_counts() -> None:
    r = run_text("[w]\nrw=write\nbs=64k\nsize=4m\nfsync=4\nend_fsync=1\n")
    s = r.summary
    assert s["bytes_written"] == 4 << 20
    assert s["latency"]["fsync"]["count"] == 64 // 4 + 1
    assert s["disk_bytes_written"] >= 4 << 20


def test_a_mixed_random_job_reads_and_writes_in_proportion() -> None:
    r = run_text("[m]\nrw=randrw\nrwmixread=75\nbs=4k\nsize=2m\nruntime=1\ntime_based\n"
                 "thinktime=500\n")
    n_read = r.summary["latency"]["read"]["count"]
    n_write = r.summary["latency"]["write"]["count"]
    assert 0.65 < n_read / (n_read + n_write) < 0.85


def test_stonewall_runs_groups_in_order() -> None:
    r = run_text("[a]\nrw=write\nsize=1m\nbs=64k\n[b]\nstonewall\nrw=read\nsize=1m\n"
                 "filename=a.0.0\n", seconds=5)
    ks = r.kernel
    reads = [p for p in ks.procs if p.p_comm.startswith("b")][0]
    assert reads.bytes_read == 1 << 20


@pytest.mark.skipif(not EXAMPLES, reason="fio-examples is not installed")
def test_fios_examples_run_or_are_refused_with_a_reason(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    outcome: dict[str, str] = {}
    for path in EXAMPLES:
        name = Path(path).name
        try:
            sc = to_scenario(path, env={})
        except InputError as e:
            assert e.file == path and e.line > 0, str(e)
            outcome[name] = f"refused: {e.message}"
            continue
        try:
            res = run_scenario(RunConfig(scenario=sc, duration_s=0.2,
                                         kernel={"fs_blocks": 1 << 18, "disk": "ssd"}))
        except InputError as e:
            outcome[name] = f"refused: {e}"
            continue
        assert res.panic is None, res.panic.report()
        outcome[name] = f"ran: {len(sc.processes)} processes, {res.summary['operations']} calls"
    with capsys.disabled():
        print()
        for name, what in outcome.items():
            print(f"  {name:<36} {what[:110]}")
    kinds = Counter(v.split(":")[0] for v in outcome.values())
    print(kinds)
    assert kinds["ran"] >= 30 and sum(kinds.values()) == len(EXAMPLES)
