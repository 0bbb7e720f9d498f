"""The soak in miniature: `vfslab run mixed --invariants --memory-every T` on a short run. The
hour-long soak itself is a command (README), not a unit test; this checks that its parts work:
the invariant checker runs throughout, memory is sampled at the asked interval, and the report
separates the emulated disk's growing content from the rest."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from vfslab.cli import cli, main
from vfslab.runner import RunConfig, run_scenario


def test_a_short_soak_samples_memory_and_checks_invariants() -> None:
    cfg = RunConfig(scenario="mixed", policy="trickle", duration_s=40.0, invariants=True)
    cfg.memory_every_s = 5.0
    res = run_scenario(cfg)
    s = res.summary
    assert res.panic is None
    assert s["invariant_checks"] >= 40 / 0.25          # every 250 ms at least
    mem = s["memory"]
    times = [x[0] for x in mem["samples"]]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 8 and all(4.9 < g < 5.1 for g in gaps)
    disk = [x[3] for x in mem["samples"]]
    assert disk == sorted(disk) and 0 < disk[-1] <= len(res.kernel.disk.store)
    assert mem["disk_blocks_growth_after_warmup"] == disk[-1] - disk[len(disk) // 4]
    assert mem["peak_rss_bytes"] == max(x[1] for x in mem["samples"]) > 0


def test_the_soak_report_names_its_memory_rows(capsys: pytest.CaptureFixture[str]) -> None:
    out = CliRunner().invoke(cli, ["run", "mixed", "--duration", "3s", "--invariants",
                                   "--memory-every", "1s"])
    assert out.exit_code == 0, out.output
    for row in ("invariant checks passed", "host memory (RSS) peak",
                "RSS growth after warm-up", "emulated disk blocks held"):
        assert row in out.output
    with pytest.raises(SystemExit) as bad:
        main(["run", "mixed", "--memory-every", "-1s"])
    assert bad.value.code == 2
    assert "--memory-every" in capsys.readouterr().err
