"""A run that stops making progress is stopped with a report naming where it was stuck, not
left to hang: a thread step that never returns, and threads that wake each other with no
emulated time passing."""

from __future__ import annotations

import signal
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from vfslab.failure import RunFailure
from vfslab.runner import RunConfig, run_scenario
from vfslab.sim.engine import Engine
from vfslab.sim.watchdog import Hang, watchdog

GEN = Generator[Any, Any, Any]

# the watchdog needs SIGALRM in the main thread; without it these runs would never end
pytestmark = pytest.mark.skipif(
    not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread(),
    reason="no interval timer in this thread")


def test_a_thread_that_never_yields_is_stopped_where_it_loops() -> None:
    m = Engine()

    def spinner() -> GEN:
        yield from m.tsleep("start", "pause", 1_000)
        n = 0
        while n >= 0:               # never sleeps again
            n += 1

    m.spawn("spinner", spinner())
    with pytest.raises(Hang, match=r"thread spinner has run since emulated time [0-9.]+ s "
                                   r"without sleeping or yielding") as e, watchdog(m, 1.0):
        m.run()
    assert e.traceback[-2].name == "spinner"      # raised in the loop ([-1]: the handler)
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL   # put back


def test_threads_that_wake_each_other_with_no_time_passing_are_a_livelock() -> None:
    m = Engine()

    def ping(me: str, other: str) -> GEN:
        while True:
            m.wakeup(other)
            yield from m.tsleep(me, "ping", 0)

    m.spawn("a", ping("a", "b"))
    m.spawn("b", ping("b", "a"))
    with pytest.raises(Hang, match=r"emulated time has stood at 0\.000000 s .* \(a livelock"), \
            watchdog(m, 1.0):
        m.run()


def test_a_run_that_progresses_is_left_alone() -> None:
    res = run_scenario(RunConfig(scenario="stream", duration_s=2.0, watchdog_s=0.5))
    assert res.panic is None and res.summary["disk_bytes_written"] > 0


def test_a_plugins_endless_loop_is_reported_as_its_own_with_the_loops_line(
        tmp_path: Path) -> None:
    f = tmp_path / "spin.py"
    f.write_text("from vfslab.api import NS, WritebackPolicy\n\n\n"
                 "class Spin(WritebackPolicy):\n    name = 'spin'\n\n"
                 "    def start(self):\n        self.spawn('spin', self.daemon())\n\n"
                 "    def daemon(self):\n        yield from self.sleep(NS)\n"
                 "        while self.ndirty_pages() >= 0:\n            pass\n")
    with pytest.raises(RunFailure) as e:
        run_scenario(RunConfig(scenario="pr24596", policy=f"{f}:Spin", duration_s=3.0,
                               watchdog_s=1.0))
    assert e.value.plugin
    msg = str(e.value)
    assert "raised Hang: no progress for 1 s of wall time: thread spin has run since" in msg
    assert f"{f}:12 in daemon" in msg and "while self.ndirty_pages() >= 0:" in msg
    assert "watchdog.py" not in msg
