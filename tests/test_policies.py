"""Writeback policies: the Linux policy against its documented behaviour, the trickle
syncer's window and smoothness, and trickle clean under the validator with biodoned."""

from __future__ import annotations

from typing import Any

import pytest

from vfslab.errors import InputError
from vfslab.policy import make_policy
from vfslab.runner import RunConfig, run_scenario
from vfslab.scenario import ProcessSpec, Scenario
from vfslab.scenarios.builtin import paced_writer

MiB = 1024 * 1024


def writer_scenario(rate: float, seconds: float, physmem_mb: int = 64) -> Scenario:
    return Scenario("w", "a paced writer",
                    [ProcessSpec("w", paced_writer("/w.dat", 1024 * MiB, 64 * 1024, rate))],
                    duration_s=seconds,
                    kernel={"physmem_mb": physmem_mb, "disk": "ssd", "fs_blocks": 1 << 19})


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
    r = run("linux", writer_scenario(0, 10, physmem_mb=32), dirty_background_ratio=5,
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


def test_the_syncer_lets_the_backlog_grow_for_thirty_seconds() -> None:
    r = run("syncer", writer_scenario(4_000_000, 40, physmem_mb=256))
    f = r.summary["figures"]
    assert f["max_dirty_age_s"] > 25
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
