"""Per-call records and `vfslab slow`: the slowest calls of a run with who made them, on what
file and where, what they returned, and what they waited on (and what the disk held then),
checked against the run itself."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from vfslab.cli import cli
from vfslab.runner import RunConfig, run_scenario


def test_the_slowest_reads_name_the_file_the_offset_and_the_read_they_waited_for(
        tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["run", "steadywriter", "--duration", "20s", "--out",
                                 str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    rows = pq.read_table(tmp_path / "slow_calls.parquet").to_pylist()
    reads = [x for x in rows if x["call"] == "pread"]
    assert reads and reads == sorted(reads, key=lambda x: -x["latency_ns"])
    worst = reads[0]
    # the interactive readers read 16 KiB pieces of /home/mail.db, 16 KiB aligned
    assert worst["process"].startswith("reader") and worst["path"] == "/home/mail.db"
    assert worst["offset"] % (16 * 1024) == 0 and worst["bytes"] == worst["result"] == 16384
    # the sleep that dominated it: the disk read of that file, no longer than the call
    assert worst["wait"].startswith("biowait: read of inode ")
    assert 0 < worst["wait_ns"] <= worst["latency_ns"]
    # and what it was behind: the disk's other requests, the writes by who queued them
    assert "at the disk" in worst["wait"]
    # the run's own latency record holds the same call
    lat = pq.read_table(tmp_path / "latency.parquet").to_pydict()
    reads_ns = [ns for op, ns in zip(lat["op"], lat["latency_ns"], strict=True) if op == "read"]
    assert max(reads_ns) == worst["latency_ns"]
    out = CliRunner().invoke(cli, ["slow", str(tmp_path), "--call", "pread", "--top", "3",
                                   "--json"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)[tmp_path.name]
    assert [x["latency_ns"] for x in shown] == [x["latency_ns"] for x in reads[:3]]


def test_a_wait_behind_the_syncer_names_it_as_who_queued_the_writes() -> None:
    """pr24596 under the 2004 syncer: its reads wait behind ioflush's lazy-fsync writes (the
    2.0 syncer thread is ioflush), and the record counts them from the disk's own queue."""
    res = run_scenario(RunConfig(scenario="pr24596", policy="syncer", duration_s=60.0))
    reads = [r for r in res.kernel.metrics.slow_calls() if r.call == "pread"]
    assert any("by ioflush" in r.wait for r in reads[:20])
    assert res.kernel.disk.stats.max_queue >= max(
        int(r.wait.split(" write(s)")[0].rsplit(" ", 1)[1]) for r in reads[:20]
        if " write(s)" in r.wait)


def test_fsync_and_fdatasync_are_apart_in_the_records_and_together_in_the_summary() -> None:
    res = run_scenario(RunConfig(scenario="logappend", duration_s=1.0))
    calls = {rec.call for rec in res.kernel.metrics.slow_calls()}
    assert "fdatasync" in calls and "fsync" not in calls
    assert res.summary["latency"]["fsync"]["count"] > 0


def test_slow_on_a_directory_without_records_is_one_clear_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["slow", str(tmp_path)])
    assert out.exit_code != 0
    assert "slow_calls.parquet" in str(out.exception) + out.output
