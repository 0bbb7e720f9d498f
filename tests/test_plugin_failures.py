"""A user's policy or protocol whose code raises, and a failure in vfslab's own code: each is
said in a few lines naming whose code failed, where, in which run and at what emulated time,
by every command that runs it (never a bare traceback), with its own exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vfslab.cli import main
from vfslab.failure import INTERNAL_EXIT, PLUGIN_EXIT

RAISES_LATE = '''from vfslab.api import WritebackPolicy


class Late(WritebackPolicy):
    name = "late"

    def page_dirtied(self, pg, now):
        if now > 10**9:
            raise KeyError("no extent for this page")
'''

FLAKY_PROTOCOL = '''from vfslab.api import Protocol


class Flaky(Protocol):
    name = "flaky"

    def vi_lock(self, vp):
        if self.k.m.now > 500_000_000:
            raise ValueError("my lock rule has a hole")
        return super().vi_lock(vp)
'''

# takes the syncer away from the kernel: kernel code fails later, with no frame of this file
BREAKS_THE_KERNEL = '''from vfslab.api import WritebackPolicy


class Breaks(WritebackPolicy):
    name = "breaks"

    def start(self):
        super().start()
        self.k.syncer = None
'''


def _plugin(tmp_path: Path, name: str, body: str, cls: str) -> str:
    f = tmp_path / name
    f.write_text(body)
    return f"{f}:{cls}"


def _vfslab(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("command", [
    ("run", "pr24596", "--duration", "2s"),
    ("compare", "pr24596", "--duration", "2s", "--no-out"),
    ("check", "pr24596", "--duration", "2s"),
    ("crashtest", "pr24596", "--crashes", "2", "--duration", "2s"),
    ("hunt", "pr24596", "--schedules", "1", "--duration", "2s"),
], ids=lambda c: c[0])
def test_a_policy_that_raises_is_named_with_its_line_and_the_kernel_call_that_led_there(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    spec = _plugin(tmp_path, "late.py", RAISES_LATE, "Late")
    flag = "--policies" if command[0] == "compare" else "--policy"
    code, err = _vfslab(capsys, *command, flag, spec)
    assert code == PLUGIN_EXIT, err
    assert "Traceback" not in err
    assert f"vfslab: the policy {spec!r} raised KeyError: 'no extent for this page'" in err
    assert f"{tmp_path / 'late.py'}:9 in page_dirtied" in err
    assert 'raise KeyError("no extent for this page")' in err        # its source line
    assert "called from vfslab/kern/uvm_page.py" in err               # where the kernel called
    assert "run: pr24596, policy" in err and "seed 0; emulated time 1.0" in err


def test_a_protocol_that_raises_is_named_likewise(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec = _plugin(tmp_path, "flaky.py", FLAKY_PROTOCOL, "Flaky")
    code, err = _vfslab(capsys, "run", "pr24596", "--duration", "2s", "--protocol", spec)
    assert code == PLUGIN_EXIT, err
    assert f"the protocol {spec!r} raised ValueError: my lock rule has a hole" in err
    assert f"{tmp_path / 'flaky.py'}:9 in vi_lock" in err
    assert "called from vfslab/kern/" in err


def test_a_failure_in_kernel_code_is_an_internal_error_with_its_traceback_in_a_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _plugin(tmp_path, "breaks.py", BREAKS_THE_KERNEL, "Breaks")
    code, err = _vfslab(capsys, "run", "pr24596", "--duration", "2s", "--policy", spec)
    assert code == INTERNAL_EXIT, err
    assert "Traceback" not in err
    assert "vfslab: internal error: AttributeError" in err
    assert "at vfslab/kern/" in err
    # the plug-in is not in the traceback, but the report says it was in the run
    assert f"the run used the policy {spec!r}" in err
    saved = Path(err.rsplit("for a bug report: ", 1)[1].strip())
    try:
        text = saved.read_text()
        assert text.startswith("Traceback") and "AttributeError" in text
    finally:
        saved.unlink()


def test_a_sweep_records_a_plugins_failure_in_its_row_and_goes_on(
        tmp_path: Path) -> None:
    from vfslab.sweep.cli import run_sweep
    from vfslab.sweep.results import ResultStore

    _plugin(tmp_path, "late.py", RAISES_LATE, "Late")
    sweep = tmp_path / "s.toml"
    sweep.write_text('[sweep]\nscenario = "pr24596"\nduration = "2s"\nseeds = 1\n\n'
                     '[grid]\npolicy = ["syncer", "late.py:Late"]\n')
    c = run_sweep(str(sweep), "local", 1, None, str(tmp_path / "out"), False, progress=False)
    assert c["done"] == 2 and c["failed"] == 1          # the syncer's point ran on
    bad = [r for r in ResultStore(tmp_path / "out").rows() if r["status"] == "failed"]
    assert len(bad) == 1
    assert "raised KeyError" in bad[0]["error"] and "late.py:9 in page_dirtied" in bad[0]["error"]


def _daemon_policy(cls: str, daemon: str) -> str:
    """A policy whose one thread runs `daemon` (the body of its generator, indented 8); the
    body starts on line 11 of the file."""
    return (f"from vfslab.api import NS, WritebackPolicy\n\n\nclass {cls}(WritebackPolicy):\n"
            f"    name = {cls.lower()!r}\n\n    def start(self):\n"
            f"        self.spawn({cls.lower()!r}, self.daemon())\n\n    def daemon(self):\n"
            + daemon)


FORGETS_TO_FLUSH = _daemon_policy("Forgets", """\
        while True:
            yield from self.sleep(NS // 2)
            for vp in self.dirty_vnodes():
                self.flush_pages(vp)
""")

# forgets once, then never calls the API again: only the end of the run can tell
FORGETS_ONCE_AND_ENDS = _daemon_policy("Once", """\
        yield from self.sleep(NS)
        self.update_inode(self.dirty_vnodes()[0])
""")

NEVER_SLEEPS = _daemon_policy("NeverSleeps", """\
        while True:
            self.sleep(NS // 2)
            for vp in self.dirty_vnodes():
                yield from self.flush_pages(vp)
""")


@pytest.mark.parametrize("body,cls,line,what", [
    (FORGETS_TO_FLUSH, "Forgets", 14, "flush_pages"),
    (FORGETS_ONCE_AND_ENDS, "Once", 12, "update_inode"),
], ids=["at-its-next-call", "at-the-end-of-the-run"])
def test_a_generator_method_called_without_yield_from_stops_the_run_naming_the_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, cls: str, line: int,
        what: str) -> None:
    spec = _plugin(tmp_path, "p.py", body, cls)
    code, err = _vfslab(capsys, "run", "pr24596", "--duration", "3s", "--policy", spec)
    assert code == PLUGIN_EXIT, err
    assert f"the policy {spec!r} misused its API: {what}() called without `yield from` at " \
           f"{tmp_path / 'p.py'}:{line} in daemon" in err
    assert f"write `yield from self.{what}(...)`" in err


def test_a_daemon_loop_that_forgets_yield_from_on_sleep_is_stopped_instead_of_hanging(
        tmp_path: Path) -> None:
    spec = _plugin(tmp_path, "n.py", NEVER_SLEEPS, "NeverSleeps")
    # in a process of its own: without the check this loop never yields and the run hangs
    r = subprocess.run([sys.executable, "-c", "from vfslab.cli import main; main()", "run",
                        "stream", "--duration", "2s", "--policy", spec],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == PLUGIN_EXIT, r.stderr
    assert f"sleep() called without `yield from` at {tmp_path / 'n.py'}:12" in r.stderr


START_WITH_YIELD = '''from vfslab.api import NS, WritebackPolicy


class GenStart(WritebackPolicy):
    name = "genstart"

    def start(self):
        yield from self.sleep(NS)
'''

THROTTLE_WITHOUT_YIELD = '''from vfslab.api import NS, WritebackPolicy


class PlainThrottle(WritebackPolicy):
    name = "plainthrottle"

    def write_throttle(self, vp, npages):
        if npages > 10:
            self.pause(vp, NS // 100)
'''

# a plain function that hands on a generator is a generator for the kernel: accepted
THROTTLE_HANDING_ON = '''from vfslab.api import WritebackPolicy


class HandsOn(WritebackPolicy):
    name = "handson"

    def write_throttle(self, vp, npages):
        return super().write_throttle(vp, npages)
'''


@pytest.mark.parametrize("body,cls,expected", [
    (START_WITH_YIELD, "GenStart", "GenStart.start contains `yield`, so calling it only makes "
     "a generator and none of its body runs"),
    (THROTTLE_WITHOUT_YIELD, "PlainThrottle", "PlainThrottle.write_throttle has no `yield`, "
     "but the kernel runs write_throttle() with `yield from`"),
], ids=["yield-where-the-kernel-calls", "none-where-the-kernel-yields-from"])
def test_an_override_that_cannot_run_as_the_kernel_calls_it_is_refused_before_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, cls: str,
        expected: str) -> None:
    spec = _plugin(tmp_path, "o.py", body, cls)
    code, err = _vfslab(capsys, "run", "stream", "--duration", "1s", "--policy", spec)
    assert code == 2, err
    assert err.startswith(f"vfslab: {tmp_path / 'o.py'}:7: policy {spec!r}: ") and expected in err


def test_an_override_that_hands_on_a_generator_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _plugin(tmp_path, "h.py", THROTTLE_HANDING_ON, "HandsOn")
    code, err = _vfslab(capsys, "run", "stream", "--duration", "1s", "--policy", spec, "--json")
    assert code == 0, err
