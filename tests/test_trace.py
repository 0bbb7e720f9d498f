"""`--trace FILE`: a run's Perfetto timeline, decoded with the perfetto package's own
protobuf classes and held against what the run itself counted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vfslab.cli import cli, main
from vfslab.runner import RunConfig, RunResult, run_scenario
from vfslab.trace.read import BEGIN, COUNTER, TraceFile


class Decoded(TraceFile):
    """vfslab's reader (trace/read.py: the perfetto package's protobuf classes) with the
    lookups these tests use."""

    def under(self, group: str) -> list[int]:
        """Tracks whose parent (or grandparent: lanes) is the group named `group`."""
        gid = next(u for u, d in self.tracks.items() if d.name == group and not d.parent_uuid)
        kids = {u for u, d in self.tracks.items() if d.parent_uuid == gid}
        return sorted(kids | {u for u, d in self.tracks.items() if d.parent_uuid in kids})

    def begins(self, tracks: list[int]) -> list[tuple[int, str, dict[str, Any]]]:
        return [(e.t, e.name, e.args) for u in tracks for e in self.events.get(u, [])
                if e.kind == BEGIN]


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Decoded]:
    path = tmp_path_factory.mktemp("trace") / "run.pftrace"
    r = run_scenario(RunConfig(scenario="pr24596", duration_s=4, ncpus=2, trace=str(path)))
    return r, Decoded(path)


def test_a_trace_has_a_track_for_each_cpu_lock_class_disk_and_process(
        traced: tuple[RunResult, Decoded]) -> None:
    r, d = traced
    names = {d.name(u).split(" (pid")[0] for u in d.tracks}
    assert {"cpu0", "cpu1", "cpu0 spl", "cpu1 spl", "wd0", "wd0 queue"} <= names
    classes = {d.name(u) for u in d.under("locks") if "#" not in d.name(u)}
    assert {"v_interlock", "vnlock", "bqueue_slock", "global_v_numoutput_slock"} <= classes
    procs = {d.tracks[u].process.process_name for u in d.tracks
             if d.tracks[u].HasField("process")}
    # every process of the workload (and the runner's setup, which lays out the files)
    assert procs == {p.p_comm for p in r.kernel.procs} | {"setup"}


def test_its_slices_are_the_runs_own_counts(traced: tuple[RunResult, Decoded]) -> None:
    r, d = traced
    m = r.kernel.m
    cpu = [u for u in d.tracks if d.name(u) in ("cpu0", "cpu1")]
    # the trace begins at boot; the run counts switches and interrupts from the workload's
    # start (the setup's are not the workload's: Engine.reset_accounting)
    t0 = r.kernel.metrics.t0
    on_cpu = [(t, n, a) for t, n, a in d.begins(cpu) if t >= t0]
    assert len(on_cpu) < len(d.begins(cpu))          # the setup is in the trace too
    steps = [a for _, _, a in on_cpu if "tid" in a]
    handlers = [a for _, _, a in on_cpu if "ipl" in a]
    assert sum(1 for a in steps if a.get("switched")) == m.stats.nswitch
    assert len(handlers) == sum(n for n, _, _ in m.intr_latency().values())
    assert len(d.begins([u for u in d.tracks if d.name(u) == "wd0"])) == \
        r.kernel.disk.nstarted
    procs = {u for u, t in d.tracks.items() if t.HasField("process")}
    calls = d.begins([u for u, t in d.tracks.items() if u in procs or t.parent_uuid in procs])
    assert len(calls) == r.kernel.metrics._nrec
    # and the workload's own figures are those of an untraced run
    plain = run_scenario(RunConfig(scenario="pr24596", duration_s=4, ncpus=2))
    assert plain.summary["figures"] == r.summary["figures"]


def test_every_track_nests_its_slices_in_time(traced: tuple[RunResult, Decoded]) -> None:
    _, d = traced
    # the trace processor orders a track's events by time, file order among equals, and an
    # end closes the innermost open slice: the reader pairs them so, and raises where an end
    # names another slice than the one it closes, or slices never end
    for uuid in d.events:
        d.slices(uuid)


def test_counters_and_flows_are_there(traced: tuple[RunResult, Decoded]) -> None:
    r, d = traced
    by_name = {d.name(u): u for u in d.tracks}
    samples = len(r.kernel.metrics.series["t_s"])
    for c in ("dirty pages", "dirty bytes", "pages under write", "oldest dirty data"):
        assert sum(1 for e in d.events[by_name[c]] if e.kind == COUNTER) == samples
    spl = Counter(e.value for e in d.events[by_name["cpu0 spl"]])
    assert spl[0] > 0 and any(level > 0 for level in spl)
    started = {f for evs in d.events.values() for e in evs for f in e.flows}
    ended = {f for evs in d.events.values() for e in evs for f in e.ends_flows}
    assert ended and ended <= started
    # I/O submissions flow to a biodone, wakeups to the woken thread's step
    ends_in = Counter(e.name for evs in d.events.values() for e in evs if e.ends_flows)
    assert ends_in["biodone"] > 0 and sum(ends_in.values()) > ends_in["biodone"]


def test_disk_requests_say_who_queued_them_and_what_they_overtook(
        traced: tuple[RunResult, Decoded]) -> None:
    r, d = traced
    reqs = d.begins([u for u in d.tracks if d.name(u) == "wd0"])
    assert all({"block", "KiB", "by", "queued ms", "overtook"} <= set(a) for _, _, a in reqs)
    by = {a["by"] for _, _, a in reqs}
    assert by <= {td.name for td in r.kernel.m.threads} and {"init", "editor0"} <= by
    assert any(n.startswith("read of inode") for _, n, _ in reqs)
    # the disksort elevator serves requests out of arrival order, and the trace says so
    assert any(a["overtook"] > 0 for _, _, a in reqs)


def test_vfslab_trace_shows_a_window_with_the_calls_made_in_it(
        tmp_path: Path) -> None:
    path = tmp_path / "w.pftrace"
    r = run_scenario(RunConfig(scenario="pr24596", duration_s=6, trace=str(path)))
    rec = r.kernel.metrics.slow_calls()[0]           # the run's slowest call
    at = (rec.start - r.t0_ns) / 1e9
    res = CliRunner().invoke(cli, ["trace", str(path), "--at", f"{at}s", "--span", "1us",
                                   "--tracks", rec.proc, "--json"])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(res.output)
    assert [(x["name"], x["dur_ns"]) for x in rows] == [(rec.call, rec.end - rec.start)]
    assert rows[0]["args"]["path"] == rec.path


def test_run_check_and_compare_take_trace(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["run", "stream", "--duration", "1s", "--trace",
                            str(tmp_path / "r.pftrace")])
    assert res.exit_code == 0, res.output
    assert "ui.perfetto.dev" in res.output and (tmp_path / "r.pftrace").stat().st_size > 0
    res = runner.invoke(cli, ["compare", "stream", "--duration", "1s", "--no-out",
                            "--policies", "syncer,trickle", "--trace",
                            str(tmp_path / "c.pftrace")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.glob("c-*")) == ["c-syncer.pftrace",
                                                           "c-trickle.pftrace"]
    res = runner.invoke(cli, ["check", "stream", "--duration", "1s", "--trace",
                              str(tmp_path / "k.pftrace")])
    assert res.exit_code in (0, 1) and (tmp_path / "k.pftrace").stat().st_size > 0
    with pytest.raises(SystemExit) as e:
        main(["run", "stream", "--duration", "1s", "--trace",
              str(tmp_path / "no" / "such" / "dir.pftrace")])
    assert e.value.code == 2
    assert "--trace" in capsys.readouterr().err


def test_an_interrupt_let_in_as_a_step_ends_comes_after_the_step() -> None:
    """A thread that sleeps at splbio (biowait does) leaves its level with the step: what
    was held pending runs after the step's end, not inside the step, on the CPU's timeline."""
    from vfslab.sim.engine import Engine
    from vfslab.sim.ipl import IPL_BIO
    from vfslab.sim.trace import EngineTracer

    m = Engine()
    seen: list[tuple[str, int]] = []

    class Log(EngineTracer):
        def step_begin(self, cpu: Any, td: Any, t: int, switched: bool) -> None:
            seen.append(("step", t))

        def step_end(self, cpu: Any, td: Any, t: int) -> None:
            seen.append(("/step", t))

        def intr_begin(self, cpu: Any, irq: Any, t: int) -> None:
            seen.append(("intr", t))

        def intr_end(self, cpu: Any, irq: Any, t: int, back_to: int) -> None:
            seen.append(("/intr", t))

    m.tracer = Log()

    def body() -> Any:
        m.splbio()
        m.post_intr(0, IPL_BIO, lambda _: None, None, at=m.time() + 100)
        m.charge(10_000)
        m.ipoint()                       # due, masked: pending
        yield from m.tsleep(object(), "biowait", 50_000)

    m.spawn("t", body())
    m.run(until=40_000)
    kinds = [k for k, _ in seen]
    assert kinds[:4] == ["step", "/step", "intr", "/intr"]
    assert seen[2][1] >= seen[1][1]
