"""Sweeps: expansion of sweep files, the same rows on local, Dask and Ray, resuming a killed
sweep without redoing finished runs, failed runs recorded, and the report."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from vfslab.errors import InputError
from vfslab.sweep.cli import run_sweep
from vfslab.sweep.results import ResultStore
from vfslab.sweep.spec import expand

SPEC = """
[sweep]
scenario = "stream"
duration = "0.5s"
seeds = 2
[grid]
policy = ["syncer", "trickle"]
"trickle.window" = [2, 5]
"machine.disk" = ["ssd"]
"""


def test_expansion_scopes_tunables_to_their_policy() -> None:
    pts = expand(SPEC)
    assert len(pts) == 2 + 4
    assert all("trickle.window" not in p for p in pts if p["policy"] == "syncer")
    assert {p["trickle.window"] for p in pts if p["policy"] == "trickle"} == {2, 5}


@pytest.mark.parametrize("grid, expected", [
    ('"trickle.windw" = [1]', r"s.toml:3: trickle: unknown option 'windw'"),
    ('"trickle.window" = ["soon"]', r"s.toml:3: trickle.window: expected a number"),
])
def test_a_bad_tunable_fails_the_file_before_any_run(grid: str, expected: str) -> None:
    with pytest.raises(InputError) as e:
        expand(f'[grid]\npolicy = ["trickle"]\n{grid}\n', "s.toml")
    assert re.search(expected, str(e.value))


def test_random_samples_are_seeded() -> None:
    text = ('[sweep]\nsamples = 5\nseed = 3\n[grid]\npolicy = ["trickle"]\n'
            '[random]\n"trickle.window" = [1.0, 20.0]\n')
    a, b = expand(text), expand(text)
    assert a == b and len(a) == 5 and all(1.0 <= p["trickle.window"] <= 20.0 for p in a)


@pytest.mark.parametrize("text,line,words", [
    ('[grid]\npolicy = ["lazy"]\n', 2, "policy: unknown policy"),
    ('[grid]\nfoo = [1]\n', 2, "unknown sweep parameter"),
    ('[grid]\n"trickle.window" = 3\n', 2, "non-empty list"),
    ('[sweep]\nseeds = 0\n', 2, "seeds"),
    ('[sweep]\nduration = "soon"\n', 2, "duration"),
    ('[mystery]\n', 1, "unknown section"),
])
def test_bad_sweep_files(text: str, line: int, words: str) -> None:
    with pytest.raises(InputError) as ei:
        expand(text, "s.toml")
    assert ei.value.file == "s.toml" and ei.value.line == line and words in ei.value.message


def _rows(out: Path) -> list[dict[str, Any]]:
    rows = ResultStore(out).rows()
    for r in rows:
        r.pop("wall_s", None)
    return sorted(rows, key=lambda r: r["run_id"])


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("spec") / "sweep.toml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def local_rows(spec_file: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("local")
    c = run_sweep(str(spec_file), "local", 2, None, str(out), False, progress=False)
    assert c["done"] == 6 and c["failed"] == 0
    return _rows(out)


def test_local_runs_are_real(local_rows: list[dict[str, Any]]) -> None:
    assert len(local_rows) == 6
    assert all(r["status"] == "ok" and r["operations"] > 0 for r in local_rows)


def test_results_are_readable_with_duckdb(spec_file: Path, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    run_sweep(str(spec_file), "local", 1, None, str(tmp_path), False, progress=False, limit=2)
    n, pols = duckdb.sql(
        f"select count(*), count(distinct \"param.policy\") "
        f"from read_parquet('{tmp_path}/*.parquet')").fetchall()[0]
    assert n == 2 and pols >= 1


def _env_for_workers() -> None:
    tests_dir = str(Path(__file__).parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [tests_dir, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)


def test_dask_gives_the_same_rows(spec_file: Path, tmp_path: Path,
                                  local_rows: list[dict[str, Any]]) -> None:
    pytest.importorskip("dask.distributed")
    c = run_sweep(str(spec_file), "dask", 2, None, str(tmp_path), False, progress=False)
    assert c["done"] == 6
    assert _rows(tmp_path) == local_rows


def test_ray_gives_the_same_rows(spec_file: Path, tmp_path: Path,
                                 local_rows: list[dict[str, Any]]) -> None:
    pytest.importorskip("ray")
    _env_for_workers()
    c = run_sweep(str(spec_file), "ray", 2, None, str(tmp_path), False, progress=False)
    assert c["done"] == 6
    assert _rows(tmp_path) == local_rows


def test_resume_redoes_nothing_finished_and_failures_are_recorded(tmp_path: Path) -> None:
    _env_for_workers()
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nseeds = 3\n[grid]\npolicy = ["trickle"]\n'
                    '"trickle.window" = [1, 13, 20]\n')
    out = tmp_path / "out"
    first = run_sweep(str(spec), "local", 1, None, str(out), False,
                      fn="sweep_helpers:fake_point", limit=4, progress=False)
    assert first["done"] == 4                      # "killed" after four runs
    with pytest.raises(InputError, match="--resume"):
        run_sweep(str(spec), "local", 1, None, str(out), False, fn="sweep_helpers:fake_point",
                  progress=False)
    ids_before = {r["run_id"] for r in ResultStore(out).rows()}
    second = run_sweep(str(spec), "local", 1, None, str(out), True,
                       fn="sweep_helpers:fake_point", progress=False)
    assert second["skipped"] == len(ids_before - {None})
    rows = ResultStore(out).rows()
    assert len(rows) == 9 and len({r["run_id"] for r in rows}) == 9
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 3 and all("unlucky window" in r["error"] for r in failed)


def test_report_tables_and_plots(local_rows: list[dict[str, Any]], spec_file: Path,
                                 tmp_path: Path) -> None:
    from click.testing import CliRunner

    from vfslab.cli import cli

    run_sweep(str(spec_file), "local", 2, None, str(tmp_path), False, progress=False)
    res = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "tradeoff.png").stat().st_size > 1000
    assert (tmp_path / "metric_vs_trickle_window.png").exists()


def test_a_corrupt_part_is_named_and_rerun_and_no_part_is_overwritten(tmp_path: Path) -> None:
    """A truncated Parquet part: `--resume` names it, leaves it out and runs its runs again;
    a deleted part's number is not reused over another part that holds rows."""
    from vfslab.sweep.results import ResultStore

    st = ResultStore(tmp_path, batch=2)
    for i in range(6):
        st.append({"run_id": f"r{i}", "x": i})
    st.flush()
    parts = sorted(tmp_path.glob("part-*.parquet"))
    assert len(parts) == 3
    parts[0].unlink()                                  # rows r0, r1 gone
    parts[1].write_bytes(parts[1].read_bytes()[:20])   # r2, r3: a truncated file
    st2 = ResultStore(tmp_path, batch=2)
    rows = st2.rows()
    assert {r["run_id"] for r in rows} == {"r4", "r5"}
    assert [f.name for f, _ in st2.skipped] == [parts[1].name]
    st2.append({"run_id": "r0", "x": 0})
    st2.append({"run_id": "r1", "x": 1})
    st2.flush()
    ids = [r["run_id"] for r in ResultStore(tmp_path).rows()]
    assert sorted(ids) == ["r0", "r1", "r4", "r5"]      # r4, r5 still there: not overwritten


def test_the_report_sorts_tunables_by_value_and_says_units_and_absent_calls() -> None:
    from vfslab.sweep.report import METRICS, cell, sort_key, summarize

    def row(window: float, seed: int, dirty: float) -> dict[str, Any]:
        return {"status": "ok", "param.policy": "trickle", "param.trickle.window": window,
                "param.seed": seed, "fig.max_dirty_age_s": window, "window_s": window,
                "fig.read_latency_p99_ms": 30.0, "fig.read_ops": 10, "fig.fsync_ops": 0,
                "fig.fsync_latency_p99_ms": 0.0, "fig.peak_write_rate_bps": 16.9e6 + seed,
                "fig.max_dirty_bytes": dirty}

    rows = [row(w, s, 133e6) for w in (1, 10, 2, 20, 5) for s in (0, 1)]
    summ = summarize(rows)
    order = [r["trickle.window"] for r in sorted(summ, key=lambda r: sort_key(
        r, ["policy", "trickle.window"]))]
    assert order == [1, 2, 5, 10, 20]                    # not 1, 10, 2, 20, 5
    rec = summ[0]
    by = {m: (scale, op) for m, _label, scale, op in METRICS}
    assert cell(rec, "fig.fsync_latency_p99_ms", *by["fig.fsync_latency_p99_ms"]) == "—"
    assert cell(rec, "fig.max_dirty_bytes", *by["fig.max_dirty_bytes"]) == "133 ± 0.00"
    assert cell(rec, "fig.peak_write_rate_bps", *by["fig.peak_write_rate_bps"]).startswith(
        "16.9 ± ")
