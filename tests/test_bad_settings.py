"""Inputs that make no sense are one clear error (exit 2) naming the key or the file and line:
every setting declares its range and is checked there, once, for the CLI, scenario files and
sweeps alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from vfslab.cli import cli
from vfslab.errors import InputError
from vfslab.sweep.spec import expand


def _run(*args: str) -> str:
    r = CliRunner().invoke(cli, list(args))
    assert isinstance(r.exception, InputError), (r.exit_code, r.output, r.exception)
    return str(r.exception)


@pytest.mark.parametrize(("setting", "words"), [
    ("machine.fs_blocks=10", "machine.fs_blocks: must be within"),
    ("machine.fs_blocks=4294967296", "machine.fs_blocks: must be within"),
    ("machine.fs_blocks=1000", "cannot hold a file system of 65536 inodes; at least 2116"),
    ("machine.hz=0", "machine.hz: must be within"),
    ("machine.physmem_mb=0", "machine.physmem_mb: must be within"),
    ("machine.physmem_mb=-5", "machine.physmem_mb: must be within"),
    ("machine.maxvnodes=0", "machine.maxvnodes: must be within"),
    ("machine.syncdelay=-1", "machine.syncdelay: must be within"),
    ("machine.bufcache_pct=500", "machine.bufcache_pct: must be within"),
    ("machine.fs_inodes=99999999", "machine.fs_inodes: must be within"),
    ("machine.disk=floppy", "machine.disk: expected one of hdd, ssd"),
    ("machine.intr_cpu=3", "machine.intr_cpu: 3 is not one of the 1 CPUs"),
    ("machine.physmem_mb=lots", "machine.physmem_mb: expected an integer"),
    ("cost.ctxsw=-1", "cost.ctxsw: expected nanoseconds"),
    ("linux.dirty_ratio=-5", "linux.dirty_ratio: must be within [0, 100]"),
    ("linux.dirty_ratio=500", "linux.dirty_ratio: must be within"),
    ("syncer.filedelay=45", "syncer.filedelay: must be within"),
    ("ffs.write_behind=sometimes", "ffs.write_behind: expected true or false"),
])
def test_a_setting_out_of_its_range_is_one_clear_error(setting: str, words: str) -> None:
    assert words in _run("run", "stream", "--duration", "1s", "--set", setting)


@pytest.mark.parametrize(("body", "line", "words"), [
    ('duration = inf\n', 1, "duration: expected a finite time"),
    ('duration = 1e30\n', 1, "duration: expected a finite time"),
    ('duration = 0\n', 1, "duration: must be more than 0"),
    ('[[process]]\npattern = "smallfiles"\ndir = "/d"\ncount = 0\nsizes = ["4KiB"]\n', 4,
     "count: must be more than 0"),
    ('[[process]]\npattern = "writer"\npath = "/f"\nsize = "1MiB"\nbs = 0\n', 5,
     "bs: must be more than 0"),
    ('[[process]]\npattern = "database"\npath = "/d"\nsize = "1MiB"\nbs = "8KiB"\n'
     'log = "/l"\nlog_bs = 0\nwrites_per_txn = 1\n', 7, "log_bs: must be more than 0"),
    ('[[process]]\npattern = "writer"\npath = "/f"\nsize = "4KiB"\nbs = "64KiB"\n', 1,
     "smaller than its block size"),
    ('[[setup]]\npath = "/' + "d" * 256 + '"\ndir = true\n[[process]]\npattern = "writer"\n'
     'path = "/f"\nsize = "1MiB"\nbs = "64KiB"\n', 1, "a name of 256 bytes"),
])
def test_a_scenario_value_that_makes_no_sense_is_an_error_at_its_line(
        tmp_path: Path, body: str, line: int, words: str) -> None:
    if "[[process]]" not in body:
        body += '[[process]]\npattern = "writer"\npath = "/f"\nsize = "1MiB"\nbs = "64KiB"\n'
    f = tmp_path / "bad.toml"
    f.write_text(body)
    msg = _run("run", str(f))
    assert words in msg and f"bad.toml:{line}" in msg, msg


def test_a_cli_duration_that_makes_no_sense_is_an_error() -> None:
    assert "at most 1e7 s" in _run("run", "stream", "--duration", "1000000000s")


def test_a_sweep_checks_kernel_settings_before_any_run() -> None:
    with pytest.raises(InputError) as e:
        expand('[grid]\npolicy = ["syncer"]\n"ffs.write_behind" = ["maybe"]\n', "s.toml")
    assert e.value.line == 3 and "ffs.write_behind: expected true or false" in e.value.message


def test_recording_a_program_that_does_not_exist_exits_non_zero() -> None:
    r = CliRunner().invoke(cli, ["record", "-o", "/tmp/x.log", "--", "/nonexistent-cmd"])
    assert r.exit_code != 0 and "no such program" in r.output


def test_recording_into_a_directory_that_does_not_exist_is_one_clear_error(
        tmp_path: Path) -> None:
    """strace's own "Can't fopen" and then a failed read of the log it never wrote, before."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    r = CliRunner().invoke(cli, ["record", "-o", str(tmp_path / "no" / "x.log"), "--", "true"])
    assert r.exit_code == 1 and r.output.strip() == (
        f"Error: {tmp_path / 'no' / 'x.log'}: cannot write the log: no directory "
        f"{str(tmp_path / 'no')!r}")


@pytest.mark.parametrize(("command", "body", "words"), [
    ("run", "faults = 3\n", "machine.faults: expected a list of fault tables"),
    ("crashtest", "faults = 3\n", "machine.faults: expected a list of fault tables"),
    ("crashtest", 'faults = [{kind = "fractio"}]\n', "fault #1: kind: expected nth, range"),
    ("crashtest", "faults = [3]\n", "fault #1: expected a table"),
])
def test_a_fault_list_that_makes_no_sense_is_one_clear_error_before_any_run(
        command: str, body: str, words: str, tmp_path: Path) -> None:
    """A --config file's [machine] faults: checked when the settings are (it reached the
    disk and failed there, a bare AttributeError in run and in every crash-test batch)."""
    f = tmp_path / "faults.toml"
    f.write_text("[machine]\n" + body)
    assert words in _run(command, "randfsync", "--duration", "1s", "--config", str(f))


@pytest.mark.parametrize("argv", [
    ["run", "stream", "--duration", "1s", "--out", "{bad}"],
    ["compare", "stream", "--duration", "1s", "--out", "{bad}"],
    ["sweep", "{sweep}", "--out", "{bad}"],
    ["run", "stream", "--duration", "1s", "--trace", "{bad}/t.pftrace"],
], ids=["run", "compare", "sweep", "trace"])
def test_an_output_path_the_host_refuses_is_one_clear_error_before_any_run(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory under a regular file (refused even to root): found by trying /proc paths;
    compare and sweep ended in a traceback, compare only after all its runs."""
    from vfslab.cli import main

    (tmp_path / "file").write_text("")
    bad = str(tmp_path / "file" / "out")
    sweep = tmp_path / "s.toml"
    sweep.write_text('[sweep]\nscenario = "stream"\nduration = "1s"\n\n[grid]\n'
                     'policy = ["syncer"]\n')
    with pytest.raises(SystemExit) as e:
        main([a.format(bad=bad, sweep=sweep) for a in argv])
    err = capsys.readouterr()
    assert e.value.code == 2, err
    assert err.err.startswith("vfslab: ") and bad in err.err and "Not a directory" in err.err
    assert "running" not in err.out + err.err and "Traceback" not in err.err


@pytest.mark.parametrize("argv,what", [
    (["run", "{bin}"], "scenario file"),
    (["run", "stream", "--config", "{bin}"], "settings file"),
    (["crashtest", "stream", "--config", "{bin}"], "settings file"),
    (["sweep", "{bin}"], "sweep file"),
], ids=["scenario", "run-config", "crashtest-config", "sweep"])
def test_a_binary_file_given_for_a_text_one_is_one_clear_error(
        argv: list[str], what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A UnicodeDecodeError traceback before (found by giving each reader random bytes)."""
    from vfslab.cli import main

    b = tmp_path / "x.toml"
    b.write_bytes(b"[sweep]\n\xee\xff\x00 binary")
    with pytest.raises(SystemExit) as e:
        main([a.format(bin=b) for a in argv])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert err.strip() == (f"vfslab: {b}: expected a {what} (text), but byte 8 is not UTF-8: "
                           "a binary file?")


@pytest.mark.parametrize("content,words", [
    ("random", "not a Parquet table"),
    ("other-table", "not a table of slow calls: no column t_s"),
])
def test_slow_on_a_file_that_is_not_a_table_of_slow_calls_is_one_clear_error(
        content: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vfslab.cli import main

    f = tmp_path / "slow_calls.parquet"
    if content == "random":
        f.write_bytes(bytes(range(256)) * 4)
    else:
        pq.write_table(pa.table({"x": [1]}), f)
    with pytest.raises(SystemExit) as e:
        main(["slow", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(f"vfslab: {f}: {words}"), err


@pytest.mark.parametrize("command", ["run", "compare"])
def test_an_empty_trace_file_name_is_one_clear_error(command: str) -> None:
    """compare made per-run names from it with Path.with_name: a ValueError traceback
    (found by tests/test_cli_fuzz.py with more examples)."""
    out = _run(command, "stream", "--duration", "0.03s", "--trace", "")
    assert "--trace: expected a file name, got ''" in out
