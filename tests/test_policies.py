"""Writeback policies: the Linux policy against its documented behaviour, the trickle
syncer's window and smoothness, and trickle clean under the validator with biodoned."""

from __future__ import annotations

from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import pytest
from kharness import make_kernel, new_vnode, run_thread

from vfslab.errors import InputError
from vfslab.kern.uvm_page import vm_page
from vfslab.kern.vnode import VREG
from vfslab.policy import make_policy
from vfslab.policy.trickle import TricklePolicy
from vfslab.runner import RunConfig, run_scenario
from vfslab.scenario import ProcessSpec, Scenario
from vfslab.scenarios.builtin import paced_writer

MiB = 1024 * 1024


def writer_scenario(rate: float, seconds: float, physmem_mb: int = 64, write: int = 64 * 1024,
                    write_behind: bool = False, mount_async: bool = False) -> Scenario:
    """A paced sequential writer. Write-behind is off unless asked: these tests measure the
    policy's own writeback, not ffs_write's."""
    return Scenario("w", "a paced writer",
                    [ProcessSpec("w", paced_writer("/w.dat", 1024 * MiB, write, rate))],
                    duration_s=seconds,
                    kernel={"physmem_mb": physmem_mb, "disk": "ssd", "fs_blocks": 1 << 19,
                            "ffs.write_behind": write_behind, "mount_async": mount_async})


def run(policy: str, sc: Scenario, **opts: Any) -> Any:
    return run_scenario(RunConfig(scenario=sc, policy=policy, policy_options=opts))


def test_linux_writes_expired_inodes_only_after_the_expiry() -> None:
    # 1 MB/s into 64 MB of memory stays under the background threshold (10%: 6.4 MB) for
    # a few seconds only if the expiry is short; with a 3 s expiry and 1 s period, nothing
    # is older than ~4 s.
    r = run("linux", writer_scenario(1_000_000, 20), dirty_expire_centisecs=300,
            dirty_writeback_centisecs=100)
    f = r.summary["figures"]
    assert 2.5 <= f["max_dirty_age_s"] <= 4.5
    assert r.kernel.policy.kupdate_passes >= 15
    assert r.kernel.policy.background_passes == 0


def test_linux_starts_background_writeback_above_the_background_ratio() -> None:
    r = run("linux", writer_scenario(4_000_000, 20))
    pol = r.kernel.policy
    bg, _freerun, _setpoint, _limit = pol.thresholds()
    f = r.summary["figures"]
    assert pol.background_passes > 0
    # expiry is 30 s: it is the background threshold that bounds the backlog
    assert f["max_dirty_bytes"] <= (bg + 2048) * 4096
    assert f["max_dirty_age_s"] < 30


def test_linux_throttles_writers_above_the_limit() -> None:
    # a writer far faster than the disk: balance_dirty_pages must pause it near the limit
    r = run("linux", writer_scenario(0, 3, physmem_mb=32), dirty_background_ratio=5,
            dirty_ratio=10)
    pol = r.kernel.policy
    _bg, freerun, _setpoint, limit = pol.thresholds()
    assert pol.pauses > 0 and pol.paused_ns > 0
    assert r.summary["figures"]["max_dirty_bytes"] <= (limit + 64) * 4096
    assert r.summary["figures"]["throttled_max"] >= 1


def test_linux_pos_ratio_is_one_at_the_setpoint_and_zero_at_the_limit() -> None:
    r = run("linux", writer_scenario(1_000_000, 1))
    pol = r.kernel.policy
    _bg, _freerun, setpoint, limit = pol.thresholds()
    assert pol.pos_ratio(setpoint) == pytest.approx(1.0)
    assert pol.pos_ratio(limit) < 0.01
    assert pol.pos_ratio(setpoint - (limit - setpoint)) > 1.9


@pytest.mark.parametrize("window", [2.0, 5.0])
def test_trickle_keeps_every_dirty_byte_within_its_window(window: float) -> None:
    r = run("trickle", writer_scenario(4_000_000, 30, physmem_mb=256), window=window)
    f = r.summary["figures"]
    assert f["max_dirty_age_s"] <= window + 1.0
    assert f["peak_write_rate_bps"] <= 1.25 * f["mean_dirty_rate_bps"]


def test_trickle_paces_at_the_heaviest_load_per_second_until_its_deadline() -> None:
    """The deadline pace is the critical intensity: a light load due soon and a heavy one due
    later give the rate the heavy one needs; a load past its deadline goes at once."""
    r = run("trickle", writer_scenario(1_000_000, 1), window=5.0, hz=10.0, project=False)
    pol = r.kernel.policy
    period = pol.period                       # 0.1 s
    due = 100 * period                        # a unit dirtied in bin b is due at due = b*period
    pol.load = {100: 5, 129: 300}             # 5 due within a period, 305 within 3 s
    assert pol.pace(due) == pytest.approx(305 / 30)
    pol.load = {100: 5, 101: 20, 129: 300}    # 25 due by the next wake-up but one
    assert pol.pace(due) == pytest.approx(25 / 2)     # beats 325 / 30
    pol.load = {90: 40, 129: 300}             # overdue: all of it now
    assert pol.pace(due) == 40


def test_trickles_deadline_pace_counts_the_pages_expected_to_join_each_dirty_extent() -> None:
    """project=true: an extent's deadline is fixed by its first page, its work by the pages
    dirtied next to it until it goes. The pace counts, in each dirty extent, the late joins
    of the last window shared among the dirty extents, over the time until it is due, never
    past a full extent."""
    r = run("trickle", writer_scenario(1_000_000, 1), window=5.0, hz=10.0)
    pol = r.kernel.policy
    period = pol.period
    due = 100 * period
    pol.extents = {(None, i): [0, 0] for i in range(4)}      # 4 dirty extents (only counted)
    pol.joins.clear()
    pol.joins.extend([2] * 9)
    pol.joins_now = 2                         # 2 late joins a period: 0.5 per extent
    pol.load = {129: 4}                       # 4 extents of a page each, due in 3 s
    pol.ext_load = {129: 4}
    assert pol.pace(due) == pytest.approx((4 + 4 * 0.5 * 30) / 30)
    pol.joins_now = 200                       # a torrent of joins fills them, no more
    pol.joins.clear()
    assert pol.pace(due) == pytest.approx(4 * 16 / 30)
    pol.opts["project"] = False
    assert pol.pace(due) == pytest.approx(4 / 30)


def test_trickle_counts_as_joins_only_pages_dirtied_next_to_an_extent_in_a_later_period(
        ) -> None:
    """The second page of an 8 KiB write is known when the extent's deadline is fixed; a
    page stored next to it seconds later is not. Counted as joins, the first kind made the
    pace write random rewrites early: on `rewrite` reads waited 1.57 s at p99 against 0.97 s
    (found by comparing the scenarios' tables)."""
    r = run("trickle", writer_scenario(1_000_000, 1))
    pol = r.kernel.policy
    obj = object()
    page = [SimpleNamespace(uobject=obj, offset=i) for i in range(3)]     # page indices
    pol.joins_now = 0
    t = 1_000 * pol.period
    pol.page_dirtied(page[0], t)
    pol.page_dirtied(page[1], t + 1)                 # the same write's next page
    assert pol.joins_now == 0
    pol.page_dirtied(page[2], t + 3 * pol.period)    # later, into the same extent
    assert pol.joins_now == 1
    assert pol.extents[(obj, 0)] == [1_000, 3]


def test_trickle_owes_a_fraction_of_a_page_until_a_whole_one_is_due() -> None:
    """The pace is a rate, fractions of a unit a wake-up included: a quarter of a page a
    wake-up is a page every fourth wake-up, not one each (rounding each wake-up's share up
    set a floor of hz pages a second whatever the load). Writing more than owed (a whole
    extent) leaves no debt; a wake-up that could write nothing banks at most one unit."""
    r = run("trickle", writer_scenario(1_000_000, 1))
    pol = r.kernel.policy
    pol.credit = 0.0
    quotas = []
    for _ in range(8):
        q = pol.owe(0.25, True)
        pol.paid(q)
        quotas.append(q)
    assert quotas == [0, 0, 0, 1, 0, 0, 0, 1]
    pol.paid(16)                              # an extent of 16 pages for a quarter owed
    assert pol.owe(0.25, True) == 0
    for _ in range(20):                       # nothing writable for 20 wake-ups
        q = pol.owe(0.25, True)
    assert q == 1                             # not 5
    assert pol.owe(0.25, False) == 0          # nothing dirty: nothing owed


class AgeRecordingTrickle(TricklePolicy):
    """trickle, recording the age of each page as its write starts (a user's policy class)."""

    def __init__(self, k: Any, options: dict[str, Any]) -> None:
        super().__init__(k, options)
        self.ages: list[tuple[int, int]] = []         # (when, age)
        self.dirtied: dict[vm_page, int] = {}

    def page_dirtied(self, pg: vm_page, now: int) -> None:
        self.dirtied[pg] = now
        super().page_dirtied(pg, now)

    def page_cleaned(self, pg: vm_page) -> None:
        now = self.m.time()
        self.ages.append((now, now - self.dirtied.pop(pg)))
        super().page_cleaned(pg)


def test_trickle_writes_mapped_pages_within_its_window_while_inode_blocks_are_in_flight(
        ) -> None:
    """On mmapwriter (random stores on an HDD) the inode block is often queued behind the
    daemon's own writes; a wake-up that waited for it let pages come due meanwhile (written
    5.29 s after their dirtying against a 5.1 s bound, found by the crash tests). Every page
    the daemon starts writing is at most window + one period old."""
    r = run_scenario(RunConfig(scenario="mmapwriter", duration_s=12.0,
                               policy="test_policies:AgeRecordingTrickle"))
    pol = r.kernel.policy
    assert isinstance(pol, AgeRecordingTrickle)
    ages = [age for when, age in pol.ages if when >= r.t0_ns]     # the workload's, not setup's
    assert len(ages) > 1_000
    assert max(ages) <= (pol.window_s() + pol.period_s()) * 1e9


def test_trickle_dates_an_inode_update_from_the_page_written_not_from_its_extent() -> None:
    """A page another writer cleans (here a ranged putpages, as write-behind or an fsync
    does) asks the updater for its inode, dated to when that page was dirtied. Its 64 KiB
    extent may have been dirty far longer, kept alive by a neighbour the cluster stopped
    short of: dated to the extent, inode blocks looked 5.4 s old on pr24596 (found by the
    compare table)."""
    k, _disk = make_kernel()
    pol = TricklePolicy(k, {})
    k.notify.attach(pol)
    PG = 4096

    def body() -> Generator[Any, Any, Any]:
        vp = yield from new_vnode(k, VREG)
        vp.v_size = 3 * PG
        yield from k.ubc.write(vp, 2 * PG, PG, stamp=1)      # the extent's first page
        yield from k.m.tsleep(body, "pause", 3_000_000_000)
        t1 = k.m.time()
        yield from k.ubc.write(vp, 0, PG, stamp=2)           # page 1 stays missing
        t2 = k.m.time()
        err = yield from k.genfs.putpages(vp, 0, PG, clean=True, sync=True)
        return vp, t1, t2, err

    vp, t1, t2, err = run_thread(k, body)
    assert err == 0
    assert len(vp.v_uobj.dirtyq) == 1                          # page 2 is still dirty
    assert t1 <= pol.to_update[vp] <= t2


def test_trickles_deadline_pace_writes_pr24596_with_a_lower_peak_than_a_backlog_share(
        ) -> None:
    """A share of the backlog ignores when it is due: on pr24596 the oldest pages drift to
    their deadline and go with the neighbours dirtied since; the deadline pace spreads them."""
    peaks = {}
    for pace in ("deadline", "share"):
        f = run_scenario(RunConfig(scenario="pr24596", policy="trickle", duration_s=60.0,
                                   policy_options={"pace": pace})).summary["figures"]
        assert f["max_dirty_age_s"] <= 5.0
        peaks[pace] = f["peak_write_rate_bps"] / f["mean_dirty_rate_bps"]
    assert peaks["deadline"] < 0.8 * peaks["share"]


def test_trickles_keepup_pace_never_writes_slower_than_the_recent_dirtying_rate() -> None:
    """pace=keepup: the units dirtied per period over the last window, counting this
    period's; a buffer dated back is not a new dirtying."""
    r = run("trickle", writer_scenario(1_000_000, 1), window=0.5, hz=10.0, pace="keepup")
    pol = r.kernel.policy
    pol.recent.clear()
    for n in (10, 0, 0, 3):
        pol.dirtied_now = n
        got = pol.keepup()
    assert got == pytest.approx(13 / 4)
    assert pol.dirtied_now == 0
    for _ in range(5):                        # the window is 5 periods: the 10 drops out
        pol.dirtied_now = 1
        got = pol.keepup()
    assert got == 1
    pol.opts["keepup"] = 0.5                  # a fraction of that rate
    pol.recent.clear()
    for n in (10, 0, 0, 3):
        pol.dirtied_now = n
        got = pol.keepup()
    assert got == pytest.approx(13 * 0.5 / 4)


def test_trickles_keepup_pace_writes_pr24596_at_its_dirtying_rate_and_reads_pay() -> None:
    """Keeping up with the dirtying rate writes the backlog as it comes: a peak second near
    the mean dirtying rate, and more requests that reads wait behind."""
    f = {}
    for pace in ("deadline", "keepup"):
        f[pace] = run_scenario(RunConfig(scenario="pr24596", policy="trickle", duration_s=60.0,
                                         policy_options={"pace": pace})).summary["figures"]
    peak = {p: x["peak_write_rate_bps"] / x["mean_dirty_rate_bps"] for p, x in f.items()}
    assert peak["keepup"] < peak["deadline"]
    assert f["keepup"]["read_latency_p99_ms"] > 2 * f["deadline"]["read_latency_p99_ms"]


def test_trickle_keeps_pr24596s_promise_and_its_peak_write_rate_with_and_without_the_fix(
        ) -> None:
    """#14's aim for the main job: on pr24596 (240 s, seed 0) trickle's oldest dirty data
    stays within its window + 1 s and its peak second within 1.25 times its dirtying rate,
    as 2.0 was and with the PR's fix; without the projected joins the peak is not met (the
    extents a mapper's burst opens come due together, filled since)."""
    for fix in (False, True):
        f = run_scenario(RunConfig(scenario="pr24596", policy="trickle",
                                   kernel={"genfs.pr24596_fix": fix})).summary["figures"]
        assert f["max_dirty_age_s"] <= 5.0 + 1.0
        assert f["peak_write_rate_bps"] <= 1.25 * f["mean_dirty_rate_bps"]
    f = run_scenario(RunConfig(scenario="pr24596", policy="trickle",
                               policy_options={"project": False})).summary["figures"]
    assert f["peak_write_rate_bps"] > 1.25 * f["mean_dirty_rate_bps"]


def test_under_the_2004_syncer_a_sequential_writer_leaves_in_64k_writes_as_it_writes() -> None:
    """2.0's ffs_write starts an asynchronous write of each 64 KiB chunk it completes: a 4 MB/s
    writer in 16 KiB writes never holds more than 1 MiB dirty, and the disk sees 64 KiB
    writes as it goes, not a burst every 30 s."""
    r = run("syncer", writer_scenario(4_000_000, 40, physmem_mb=256, write=16 * 1024,
                                      write_behind=True))
    f = r.summary["figures"]
    disk = r.kernel.disk.stats
    assert f["max_dirty_bytes"] <= 1 * MiB
    # (the file's indirect and inode blocks are delayed writes that wait for the syncer, as
    # in 2.0: the oldest dirty *buffer* is ~30 s old, the data is not)
    assert f["peak_write_rate_bps"] <= 1.5 * f["mean_dirty_rate_bps"]
    assert 60 * 1024 <= disk.bytes_written / disk.writes <= 66 * 1024


def test_on_an_mnt_async_mount_the_thirty_second_backlog_is_back() -> None:
    r = run("syncer", writer_scenario(4_000_000, 40, physmem_mb=256, write=16 * 1024,
                                      write_behind=True, mount_async=True))
    f = r.summary["figures"]
    assert f["max_dirty_age_s"] > 25
    assert f["max_dirty_bytes"] > 100 * MiB
    assert f["peak_write_rate_bps"] > 5 * f["mean_dirty_rate_bps"]


def test_trickle_is_clean_under_the_validator_with_biodoned() -> None:
    res = run_scenario(RunConfig(scenario="protocol", policy="trickle", protocol="biodoned",
                                 check=True, ncpus=2))
    assert res.panic is None
    assert res.checker.findings() == []
    assert res.kernel.policy.pages_written + res.kernel.policy.bufs_written > 0


def test_policy_options_are_checked() -> None:
    with pytest.raises(InputError, match="unknown option"):
        run("trickle", writer_scenario(1, 1), windw=3)
    with pytest.raises(InputError, match="unknown policy"):
        make_policy("lazy", None, {})  # type: ignore[arg-type]


def test_the_policy_bench_measures_each_wakeup_writing_exactly_its_due_group() -> None:
    """`vfslab bench policy` times several wake-ups on each machine, each when one group of
    old pages is due; a wake-up that also wrote a neighbouring group's pages (they shared a
    64 KiB extent: found writing the bench) would time other work, and the bench refuses it."""
    import json

    from click.testing import CliRunner

    from vfslab.cli import cli

    r = CliRunner().invoke(cli, ["bench", "policy", "--small", "256", "--large", "4096",
                                 "--due", "128", "--wakeups", "3", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    for label in ("small", "large"):
        assert out[label]["pages_written"] == 128
        assert out[label]["wakeups"] == 3
    assert out["large"]["dirty_pages"] > 4 * out["small"]["dirty_pages"] / 2
