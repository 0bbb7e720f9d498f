"""fio job files: the reader's syntax and options, runs against the kernel, and the example
job files that fio ships (Debian's fio-examples: .ci/run installs it)."""

from __future__ import annotations

import glob
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
@pytest.mark.parametrize("path", EXAMPLES, ids=[Path(p).name for p in EXAMPLES])
def test_each_of_fios_examples_runs_or_is_refused_with_a_reason(path: str) -> None:
    """One test an example, so that the examples (200 s in one test) spread over workers."""
    try:
        sc = to_scenario(path, env={})
    except InputError as e:
        assert e.file == path and e.line > 0, str(e)
        return
    try:
        res = run_scenario(RunConfig(scenario=sc, duration_s=0.2, kernel={"disk": "ssd"}))
    except InputError as e:
        assert str(e), path                  # refused, saying why
        return
    assert res.panic is None, res.panic.report()
    assert res.summary["operations"] > 0, path


@pytest.mark.skipif(not EXAMPLES, reason="fio-examples is not installed")
def test_most_of_fios_examples_are_jobs_vfslab_takes() -> None:
    taken = []
    for path in EXAMPLES:
        try:
            to_scenario(path, env={})
        except InputError:
            continue
        taken.append(path)
    assert len(taken) >= 30, len(taken)


def test_a_job_stopped_by_an_io_error_is_a_failed_run_naming_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from vfslab.cli import cli

    job = tmp_path / "full.fio"
    # 8 MiB of writes into a file system of 1,400 blocks (5.5 MiB): ENOSPC
    job.write_text("[filler]\nrw=write\nbs=64k\nsize=8m\n")
    r = CliRunner().invoke(cli, ["run", f"fio:{job}", "--set", "machine.fs_blocks=1400",
                                 "--set", "machine.fs_inodes=64"])
    assert r.exit_code == 1, r.output
    assert "fio job filler.0: pwrite failed with ENOSPC" in r.output
    res = run_scenario(RunConfig(scenario=to_scenario(str(job)), kernel={
        "fs_blocks": 1400, "fs_inodes": 64, "disk": "ssd"}))
    assert res.summary["fio"]["errors"] == [{"job": "filler.0", "call": "pwrite",
                                             "errno": "ENOSPC"}]
    assert res.summary["syscall_errors"]["write"] == {"ENOSPC": 1}


@pytest.mark.parametrize(("text", "line", "words"), [
    ("[a]\nrw=randrw\nrwmixread=150\nsize=1m\n", 3, "rwmixread: expected a percentage"),
    ("[a]\nrw=read\nbs=1g\nsize=1m\n", 3, "larger than the file"),
    ("[a]\nnumjobs=0\nsize=1m\n", 2, "numjobs: expected a whole number of at least 1"),
    ("[a]\nrw=read\nsize=6g\n", 3, "larger than vfslab's FFS allows"),
])
def test_values_fio_refuses_are_refused_with_their_line(text: str, line: int,
                                                        words: str) -> None:
    with pytest.raises(InputError) as ei:
        sc_of(text)
    assert ei.value.line == line and words in ei.value.message


def test_an_include_cycle_is_an_error_at_the_include(tmp_path: Path) -> None:
    (tmp_path / "a.fio").write_text("[a]\nsize=1m\ninclude b.fio\n")
    (tmp_path / "b.fio").write_text("include a.fio\n")
    with pytest.raises(InputError) as ei:
        to_scenario(str(tmp_path / "a.fio"))
    assert ei.value.file.endswith("b.fio") and ei.value.line == 1
    assert "include cycle: a.fio -> b.fio -> a.fio" in ei.value.message


def test_a_time_based_job_runs_its_end_fsync_and_the_run_waits_for_it() -> None:
    sc = sc_of("[w]\nrw=write\nbs=64k\nsize=64m\nruntime=1\ntime_based\nend_fsync=1\n")
    r = run_scenario(RunConfig(scenario=sc, kernel={"disk": "hdd"}))
    assert r.summary["latency"]["fsync"]["count"] == 1
    assert not r.summary["completion"]["cut"]
    assert r.summary["emulated_s"] > 1.0        # the fsync after the runtime is in the run


def test_files_are_laid_out_at_their_size_and_the_file_system_sized_to_fit() -> None:
    sc = sc_of("[r]\nrw=randread\nbs=4k\nsize=1g\nruntime=1\n"
               "[w]\nrw=randwrite\nbs=4k\nsize=4g\nruntime=1\nnrfiles=2\n")
    setup = {s.path: (s.size, s.fill) for s in sc.setup if not s.is_dir}
    assert setup["/fio/r.0.0"] == (1 << 30, True)             # read: written, no cap
    assert setup["/fio/w.0.0"] == (2 << 30, False)            # written at random: extended
    # 5 GiB of files: more than the default 4 GiB file system, so it is made to fit
    assert sc.kernel["fs_blocks"] >= (1024 + 4096) * 256
    r = run_scenario(RunConfig(scenario=sc_of("[r]\nrw=randread\nbs=4k\nsize=300m\n"
                                              "runtime=1\n"), kernel={"disk": "hdd"}))
    # the reads reach the disk: laid out past the old 256 MiB cap, no holes
    assert r.summary["latency"]["read"]["p50_ms"] > 1.0
