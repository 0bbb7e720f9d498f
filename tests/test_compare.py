"""`vfslab compare`, `run --out` and `check` from the command line; PR kern/24596's backlog
on pr24596 as 2.0 had it and as the fix removes it; and the trickle syncer's promise on
steadywriter, measured as `vfslab compare` measures them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from vfslab.cli import cli


def _pr24596(*extra: str) -> dict[str, Any]:
    res = CliRunner().invoke(cli, ["compare", "--json", "--no-out", "--policies",
                                   "syncer,trickle", *extra])
    assert res.exit_code == 0, res.output
    doc: dict[str, Any] = json.loads(res.output)
    assert doc["scenario"] == "pr24596"
    return doc["results"]


def test_on_pr24596_the_2004_syncer_leaves_pages_unflushed_on_no_list_for_over_a_minute(
        ) -> None:
    """As 2.0 was: files found clean leave the worklist, and the next bursts' stores through
    still-mapped UBC windows and the programs' own mappings fault nowhere (kern/pmap.py)."""
    r = _pr24596()
    s, t = r["syncer"], r["trickle"]
    assert s["max_unlisted_dirty_age_s"] > 60 and s["max_dirty_age_s"] > 60
    assert s["max_unknown_dirty_pages"] > 100         # stores the kernel never saw
    # trickle walks dirty lists: its pages are write-protected when cleaned, so every store
    # is seen, and its promise holds
    assert t["max_dirty_age_s"] <= t["window_s"] + 1.0
    assert t["max_unknown_dirty_pages"] == 0


def test_with_the_pr24596_fix_the_syncer_keeps_its_window_on_pr24596() -> None:
    r = _pr24596("--set", "genfs.pr24596_fix=true")
    s, t = r["syncer"], r["trickle"]
    assert s["max_dirty_age_s"] <= s["window_s"]
    assert s["max_unlisted_dirty_pages"] == 0
    assert t["max_dirty_age_s"] <= t["window_s"] + 1.0


def test_a_lazy_sync_that_walked_every_vnode_would_have_bounded_the_prs_backlog() -> None:
    """ffs_vfsops.c 1.119 (2003): the syncer vnode's lazy ffs_sync VOP_FSYNCs every vnode with
    pages, and putpages' pmap_clear_modify finds the stores made through mappings: the oldest
    dirty data stays within the 41 s window. As early 2004 (the default) it does not."""
    r = _pr24596("--set", "ffs.lazy_sync_vnodes=true")
    s = r["syncer"]
    assert s["max_dirty_age_s"] <= s["window_s"] == 41


def test_compare_steadywriter_meets_the_trickle_targets(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["compare", "steadywriter", "--json", "--out",
                                   str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["scenario"] == "steadywriter"
    assert set(doc["results"]) == {"syncer", "trickle", "linux"}
    t, s = doc["results"]["trickle"], doc["results"]["syncer"]
    for key in ("peak_write_rate_bps", "mean_dirty_rate_bps", "max_dirty_bytes",
                "max_dirty_age_s", "read_latency_p99_ms", "fsync_latency_p99_ms",
                "disk_bytes_written", "bytes_dirtied", "max_unlisted_dirty_pages",
                "max_unlisted_dirty_age_s"):
        assert key in t
    assert t["peak_write_rate_bps"] <= 1.25 * t["mean_dirty_rate_bps"]
    assert t["max_dirty_age_s"] <= doc["window_s"] + 1.0
    # as 2.0 was, ffs_write's write-behind sends the writer's data out as it goes: the 2004
    # syncer holds no backlog on this workload
    assert s["max_dirty_bytes"] < 4 * 1024 * 1024 and s["window_s"] == 41
    assert abs(t["disk_bytes_to_durable"] - s["disk_bytes_to_durable"]) <= \
        0.05 * s["disk_bytes_to_durable"]
    for png in ("dirty_backlog.png", "write_throughput.png", "latency_cdf.png"):
        assert (tmp_path / png).stat().st_size > 1000
    ts = pq.read_table(tmp_path / "trickle" / "timeseries.parquet")
    assert {"t_s", "dirty_bytes", "oldest_dirty_s", "disk_write_bps", "unlisted_dirty_pages",
            "oldest_unlisted_s"} <= set(ts.column_names)
    assert ts.num_rows > 1000
    # the series start at the measured run's start, as the plots and slow_calls' t_s do
    assert 0 < ts.column("t_s")[0].as_py() <= 0.1
    # the summary's worst is the series' worst
    assert t["max_unlisted_dirty_pages"] == max(ts.column("unlisted_dirty_pages").to_pylist())


def test_without_write_behind_the_policies_alone_differ_as_the_mail_says() -> None:
    """--set ffs.write_behind=false: only the policy writes data. The 2004 syncer then piles
    up 30 s of writes and flushes them in one burst that reads wait behind; trickle does not."""
    res = CliRunner().invoke(cli, ["compare", "steadywriter", "--json", "--no-out",
                                   "--policies", "syncer,trickle", "--duration", "40s",
                                   "--set", "ffs.write_behind=false"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)["results"]
    t, s = r["trickle"], r["syncer"]
    assert s["max_dirty_bytes"] > 100 * 1024 * 1024 and s["max_dirty_age_s"] > 29
    assert t["max_dirty_age_s"] <= 5.0 + 1.0
    assert t["read_latency_p99_ms"] <= s["read_latency_p99_ms"] / 5


def test_compare_protocols_reports_their_costs() -> None:
    res = CliRunner().invoke(cli, ["compare", "smallfiles", "--duration", "2s", "--protocols",
                                   "netbsd-2.0,biodoned", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    nb, bd = doc["results"]["netbsd-2.0"], doc["results"]["biodoned"]
    for key in ("ipl_bio_ms_per_s", "interrupt_latency", "completion_latency_mean_us",
                "context_switches", "cpu_us_per_op", "throughput_write_bps"):
        assert key in nb
    # biodoned moves biodone's work into a thread: more switches
    assert bd["context_switches"] > nb["context_switches"]


def test_run_out_writes_parquet_summary_and_plots(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["run", "randfsync", "--duration", "2s", "--out",
                                   str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["latency"]["fsync"]["count"] > 0
    lat = pq.read_table(tmp_path / "latency.parquet").to_pydict()
    assert "fsync" in set(lat["op"])


def test_check_exits_1_with_findings_and_0_when_clean() -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["check", "--protocol", "netbsd-2.0", "--duration", "10s",
                              "--json"])
    assert bad.exit_code == 1
    doc = json.loads(bad.output)
    assert doc["protocol"] == "netbsd-2.0" and doc["scenario"] == "protocol"
    assert {f["kind"] for f in doc["findings"]} >= {"irq-lock-inversion", "unguarded-access",
                                                     "spl-only-guard"}
    good = runner.invoke(cli, ["check", "--protocol", "biodoned", "--duration", "10s"])
    assert good.exit_code == 0, good.output
    assert "no findings" in good.output


def test_bad_command_line_input_is_one_clear_error() -> None:
    runner = CliRunner()
    for args, words in ((["run", "stream", "--set", "trickle.window"], "NAME=VALUE"),
                        (["run", "nonesuch"], "unknown scenario"),
                        (["run", "stream", "--policy", "lazy"], "unknown policy"),
                        (["run", "stream", "--duration", "soon"], "duration"),
                        (["run", "stream", "--set", "cost.warp=3"], "unknown cost")):
        res = runner.invoke(cli, args)
        assert res.exit_code != 0
        assert words in str(res.exception) or words in res.output


def test_compare_writes_its_plots_and_leaves_unmeasured_latencies_blank(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["compare", "stream", "--duration", "2s",
                                   "--policies", "trickle,syncer"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "vfslab-out" / "compare-stream"
    assert {p.name for p in out.glob("*.png")} == {
        "dirty_backlog.png", "write_throughput.png", "latency_cdf.png"}
    fsync_row = next(ln for ln in res.output.splitlines() if "fsync latency p99" in ln)
    assert "—" in fsync_row and "0.000" not in fsync_row      # stream never calls fsync
    write_row = next(ln for ln in res.output.splitlines() if "write latency p99" in ln)
    assert "—" not in write_row
    none = CliRunner().invoke(cli, ["compare", "stream", "--duration", "1s", "--policies",
                                    "trickle", "--no-out", "--out", str(tmp_path / "x")])
    assert none.exit_code == 0 and not (tmp_path / "x").exists()


def test_the_lowest_possible_peak_spreads_a_burst_over_the_window() -> None:
    """A burst must be written within the window after it: 10 MB dirtied in one 100 ms sample
    with a 5 s window cannot be written slower than 10 MB / 5.1 s; a steady rate cannot be
    written slower than itself, less what the window lets the last interval defer."""
    import numpy as np

    from vfslab.metrics.summary import _peak_write_bound

    burst = np.zeros(600)
    burst[100] = 10e6
    assert _peak_write_bound(burst, 0.1, 5.0) == pytest.approx(10e6 / 5.1)
    steady = np.full(600, 0.4e6 * 0.1)                 # 0.4 MB/s for 60 s
    got = _peak_write_bound(steady, 0.1, 5.0)
    assert got == pytest.approx(0.4e6 * 60 / 65)       # the longest interval: all 60 s
    assert _peak_write_bound(steady, 0.1, 0.0) == pytest.approx(0.4e6)
