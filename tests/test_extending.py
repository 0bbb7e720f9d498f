"""The policy and the protocol of docs/extending.md, copied out of the page into a directory
outside the package, run by `file.py:Class` and by an installed entry point through run,
compare, check, crashtest and a Dask and a Ray sweep."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vfslab.cli import cli
from vfslab.errors import InputError

DOC = Path(__file__).parent.parent / "docs" / "extending.md"


def _blocks() -> dict[str, str]:
    """`# file: NAME` python blocks of the page."""
    out = {}
    for body in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S):
        m = re.match(r"# file: (\S+)\n", body)
        if m:
            out[m.group(1)] = body
    return out


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("user-plugins")
    for name, body in _blocks().items():
        (d / name).write_text(body)
    return d


@pytest.fixture(scope="module")
def installed_dir(tmp_path_factory: pytest.TempPathFactory, plugin_dir: Path) -> Path:
    """A distribution on sys.path whose entry points name the two classes, as `pip install`
    of a user's package would leave it."""
    d = tmp_path_factory.mktemp("site")
    (d / "myplugins").mkdir()
    (d / "myplugins" / "__init__.py").write_text("")
    for name in ("ageflush.py", "worklist_only.py"):
        (d / "myplugins" / name).write_text((plugin_dir / name).read_text())
    info = d / "myplugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[vfslab.policies]\nmyageflush = myplugins.ageflush:AgeFlush\n\n"
        "[vfslab.protocols]\nmyworklist = myplugins.worklist_only:WorklistOnly\n")
    return d


def _cli(*args: str) -> tuple[int, str]:
    """(exit code, output) as `vfslab ARGS` gives them: an input error is exit 2."""
    r = CliRunner().invoke(cli, list(args))
    if isinstance(r.exception, InputError):
        return 2, r.output + str(r.exception)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.output


def test_the_page_holds_a_complete_policy_of_about_thirty_lines() -> None:
    blocks = _blocks()
    assert set(blocks) == {"ageflush.py", "worklist_only.py"}
    code = [ln for ln in blocks["ageflush.py"].splitlines()
            if ln.strip() and not ln.strip().startswith("#")]
    assert len(code) <= 36


def test_a_users_policy_runs_from_a_file_and_its_tunables_are_checked(plugin_dir: Path
                                                                      ) -> None:
    spec = f"{plugin_dir / 'ageflush.py'}:AgeFlush"
    code, out = _cli("run", "stream", "--policy", spec, "--duration", "3s", "--json",
                     "--set", "ageflush.age=0.5")
    assert code == 0, out
    s = json.loads(out)
    assert s["disk_bytes_written"] > 0 and s["window_s"] == 1.0
    # a declared tunable is checked as a built-in's is: range, type, name
    for bad, words in (("ageflush.age=-1", "ageflush.age: must be greater than 0"),
                       ("ageflush.agee=1", "unknown option 'agee'"),
                       ("ageflush.age=soon", "expected a number")):
        code, out = _cli("run", "stream", "--policy", spec, "--duration", "1s", "--set", bad)
        assert code == 2 and words in out, out


def test_a_key_of_a_policy_that_is_not_selected_is_checked_not_ignored() -> None:
    code, out = _cli("run", "stream", "--duration", "1s", "--set", "trickle.x=1")
    assert code == 2 and "unknown option 'x'" in out
    code, out = _cli("run", "stream", "--duration", "1s", "--set", "nosuch.x=1")
    assert code == 2 and "unknown scope 'nosuch'" in out


def test_compare_runs_a_users_policy_beside_the_built_ins(plugin_dir: Path) -> None:
    spec = f"{plugin_dir / 'ageflush.py'}:AgeFlush"
    code, out = _cli("compare", "stream", "--policies", f"syncer,{spec}", "--duration", "3s",
                     "--json", "--no-out", "--set", "ageflush.age=1")
    assert code == 0, out
    res = json.loads(out)["results"]
    assert set(res) == {"syncer", spec}
    # the user's policy keeps data younger than its window; the 2004 syncer does not
    assert res[spec]["max_dirty_age_s"] <= 1.0 + 0.5 + 0.2
    assert res["syncer"]["max_dirty_age_s"] > res[spec]["max_dirty_age_s"]


def test_check_runs_a_users_protocol_and_finds_what_it_left_alone(plugin_dir: Path) -> None:
    spec = f"{plugin_dir / 'worklist_only.py'}:WorklistOnly"
    code, out = _cli("check", "protocol", "--protocol", spec, "--json")
    assert code == 1, out                 # the mail's v_interlock violations remain
    doc = json.loads(out)
    text = json.dumps(doc)
    assert "vwakeup" in text and "holdrele" in text
    assert "v_synclist" not in text and "syncer_workitem_pending" not in text


def test_crashtest_holds_a_users_policy_to_its_promise(plugin_dir: Path) -> None:
    spec = f"{plugin_dir / 'ageflush.py'}:AgeFlush"
    code, out = _cli("crashtest", "randfsync", "--policy", spec, "--crashes", "8",
                     "--per-run", "8", "--duration", "4s", "--json")
    assert code == 0, out
    r = json.loads(out)
    assert r["crashes"] == 8 and r["fsync_bytes_lost"] == 0 and r["window_s"] == 2.5
    assert r["over_bound_late_bytes"] == 0       # it wrote everything out in time


def _sweep_file(d: Path, policy: str) -> Path:
    p = d / f"sweep-{abs(hash(policy)) % 10**6}.toml"
    p.write_text(f'[sweep]\nscenario = "stream"\nduration = "2s"\nseeds = 1\n\n'
                 f'[grid]\npolicy = ["{policy}"]\n"ageflush.age" = [0.5, 1.0]\n')
    return p


@pytest.mark.parametrize("engine", ["dask", "ray"])
def test_a_sweep_runs_a_users_policy_on_workers(engine: str, plugin_dir: Path,
                                                tmp_path: Path) -> None:
    pytest.importorskip("ray" if engine == "ray" else "dask.distributed")
    from vfslab.sweep.cli import run_sweep
    from vfslab.sweep.results import ResultStore

    spec = "ageflush.py:AgeFlush"          # relative to the sweep file
    sweep = _sweep_file(plugin_dir, spec)
    c = run_sweep(str(sweep), engine, 2, None, str(tmp_path), False, progress=False)
    rows = ResultStore(tmp_path).rows()
    assert c["done"] == 2 and c["failed"] == 0, [r.get("error") for r in rows]
    assert sorted(r["param.ageflush.age"] for r in rows) == [0.5, 1.0]
    assert all(r["status"] == "ok" and r["disk_bytes_written"] > 0 for r in rows)


def test_installed_entry_points_name_them_everywhere(installed_dir: Path,
                                                     tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(installed_dir), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                               if p]])}
    vfslab = [sys.executable, "-c", "from vfslab.cli import main; main()"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*vfslab, *args], env=env, capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)

    r = cli("run", "stream", "--policy", "myageflush", "--duration", "2s", "--json",
            "--set", "ageflush.age=1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["policy"] == "myageflush"
    r = cli("compare", "stream", "--policies", "syncer,myageflush", "--duration", "2s",
            "--json", "--no-out")
    assert r.returncode == 0 and set(json.loads(r.stdout)["results"]) == {
        "syncer", "myageflush"}, r.stderr
    r = cli("check", "protocol", "--protocol", "myworklist", "--json")
    assert r.returncode == 1 and "holdrele" in r.stdout, r.stderr
    r = cli("crashtest", "randfsync", "--policy", "myageflush", "--crashes", "4",
            "--per-run", "4", "--duration", "3s", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["fsync_bytes_lost"] == 0, r.stderr
    (tmp_path / "s.toml").write_text(
        '[sweep]\nscenario = "stream"\nduration = "2s"\n\n[grid]\npolicy = ["myageflush"]\n'
        '"ageflush.period" = [0.25, 0.5]\n')
    for engine in ("dask", "ray"):
        r = cli("sweep", "s.toml", "--engine", engine, "--workers", "2", "--out", engine)
        assert r.returncode == 0, r.stdout + r.stderr
        r = cli("report", engine)
        assert r.returncode == 0 and "myageflush" in r.stdout, r.stdout + r.stderr
        assert "2 runs" in r.stdout and "failed" not in r.stdout, r.stdout
