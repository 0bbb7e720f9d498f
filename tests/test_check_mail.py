"""`vfslab check`: the mail's violations in netbsd-2.0, each with its chain, nothing else; the
fixes clean."""

from __future__ import annotations

from typing import Any

import pytest

from vfslab.runner import RunConfig, run_scenario
from vfslab.scenarios import all_names


def _findings(protocol: str, cpus: int = 1, scenario: str = "protocol",
              duration: float | None = None, kernel: dict[str, Any] | None = None
              ) -> tuple[list[Any], dict[str, Any]]:
    res = run_scenario(RunConfig(scenario=scenario, protocol=protocol, check=True,
                                 ncpus=cpus, duration_s=duration, kernel=kernel or {}))
    assert res.panic is None, res.panic.report()
    s = res.summary
    assert s["operations"] > 5           # it really ran
    if scenario == "protocol" and duration is None:
        # and its programs did their work: errors are the injected I/O errors, not a dead
        # workload (a failed first mkdir once left every call ENOENT, findings and all)
        assert s["bytes_written"] > 1 << 20 and s["syscall_errors_total"] < s["operations"] // 2, s
    return res.checker.findings(), s


def _has(fs: list[Any], kind: str, subject: str, *chain: str, intr: bool | None = None) -> bool:
    for f in fs:
        if f.kind != kind or f.subject != subject:
            continue
        if intr is not None and f.context.startswith("interrupt") != intr:
            continue
        for st in f.stacks:
            it = iter(st)
            if all(any(fn == c for fn in it) for c in chain):
                return True
    return False


@pytest.fixture(scope="module")
def netbsd() -> list[Any]:
    fs, _ = _findings("netbsd-2.0")
    return fs


def test_vwakeup_writes_v_flag_from_biodone(netbsd: list[Any]) -> None:
    assert _has(netbsd, "unguarded-access", "vnode.v_flag", "biodone", "vwakeup", intr=True)


def test_async_brelse_runs_in_biodone(netbsd: list[Any]) -> None:
    # brelse's locks taken at IPL_BIO from biodone, for async buffers without B_CALL
    assert _has(netbsd, "irq-lock-inversion", "v_interlock", "biodone", "brelse")


def test_error_path_reassignbuf_and_brelvp_touch_v_flag_and_the_page_list(
        netbsd: list[Any]) -> None:
    for fn in ("reassignbuf", "brelvp"):
        assert _has(netbsd, "unguarded-access", "uvm_object.memq", "biodone", "brelse", fn,
                    intr=True)
        assert _has(netbsd, "unguarded-access", "vnode.v_flag", "biodone", "brelse", fn,
                    intr=True)


def test_holdrele_takes_v_interlock_from_biodone(netbsd: list[Any]) -> None:
    assert _has(netbsd, "irq-lock-inversion", "v_interlock", "biodone", "brelvp", "holdrele",
                "simple_lock(v_interlock)")


def test_vnode_free_list_slock_at_ipl_bio_and_below_elsewhere(netbsd: list[Any]) -> None:
    assert _has(netbsd, "irq-lock-inversion", "vnode_free_list_slock", "biodone", "holdrele")
    f = next(f for f in netbsd if f.kind == "irq-lock-inversion"
             and f.subject == "vnode_free_list_slock")
    assert "IPL_NONE" in f.explanation and "IPL_BIO" in f.explanation


def test_lists_guarded_by_splbio_alone(netbsd: list[Any]) -> None:
    spl_only = {f.subject for f in netbsd if f.kind == "spl-only-guard"}
    assert {"vnode.v_dirtyblkhd", "vnode.v_cleanblkhd", "vnode.v_synclist"} <= spl_only


def test_putpages_genput2_loop_reads_v_numoutput_without_its_lock(netbsd: list[Any]) -> None:
    # 2.0's "XXX - try to recover from missed wakeups with a timeout": the loop reads
    # v_numoutput (and sets VBWAIT) under v_interlock at splbio, not under the global lock
    assert _has(netbsd, "unguarded-access", "vnode.v_numoutput", "putpages",
                "putpages_wait_output", intr=False)


def test_biodones_v_interlock_reaches_the_page_queue_lock(netbsd: list[Any]) -> None:
    """v_interlock (the vnode's vmobjlock) is held while the page queues are locked, as 2.0's
    genfs_getpages does; biodone takes v_interlock at IPL_BIO, so the page queue lock taken
    at IPL_NONE elsewhere is an inversion on two CPUs, a consequence of rule 4."""
    assert _has(netbsd, "irq-lock-inversion", "uvm.pageqlock", "uvm_lock_pageq")
    f = next(f for f in netbsd if f.subject == "uvm.pageqlock")
    assert "v_interlock -> uvm.pageqlock" in f.explanation


def test_nothing_else(netbsd: list[Any]) -> None:
    allowed = {
        ("unguarded-access", "vnode.v_flag"),        # vwakeup, VONWORKLST, VBWAIT (2.0)
        ("unguarded-access", "vnode.v_numoutput"),   # genfs_putpages' genput2 loop (2.0)
        ("unguarded-access", "uvm_object.memq"),     # reassignbuf/brelvp's TAILQ_EMPTY
        ("irq-lock-inversion", "v_interlock"),
        # vn_lock hands v_interlock to lockmgr (LK_INTERLOCK), which takes the vnode lock's
        # lk_interlock under it: a consequence of v_interlock's own inversion, in 2.0 too
        ("irq-lock-inversion", "vnlock.lk_interlock"),
        ("irq-lock-inversion", "vnode_free_list_slock"),
        # genfs_getpages, aiodone and ubc take the page queues with the object's lock
        # (v_interlock) held: biodone's v_interlock reaches uvm.pageqlock, which the page
        # daemon takes at IPL_NONE (2.0 too)
        ("irq-lock-inversion", "uvm.pageqlock"),
        ("spl-only-guard", "vnode.v_dirtyblkhd"),
        ("spl-only-guard", "vnode.v_cleanblkhd"),
        ("spl-only-guard", "vnode.v_synclist"),
        ("spl-only-guard", "syncer.syncer_workitem_pending"),
    }
    assert {(f.kind, f.subject) for f in netbsd} <= allowed


@pytest.mark.parametrize("protocol", ["biodoned", "splbio-always", "split-interlock"])
@pytest.mark.parametrize("scenario", ["protocol", "mmapwriter", "smallfiles", "mixed"])
@pytest.mark.parametrize("seed", [0, 7])
def test_the_fixes_stay_clean_on_two_cpus_under_interrupt_stress(protocol: str, scenario: str,
                                                                 seed: int) -> None:
    """The issue's stress loop, a few of its points (the note has all of it: every library
    scenario, seeds 0-19): interrupts delivered early and inside critical sections find no
    violation and no panic in any fix."""
    res = run_scenario(RunConfig(scenario=scenario, protocol=protocol, check=True, ncpus=2,
                                 irq_stress=0.3, seed=seed, duration_s=5.0))
    assert res.panic is None, res.panic.report()
    fs = res.checker.findings()
    assert fs == [], [(f.kind, f.subject, f.stacks) for f in fs]
    assert res.summary["operations"] > 5


@pytest.mark.parametrize("protocol", ["biodoned", "splbio-always", "split-interlock"])
@pytest.mark.parametrize("cpus", [1, 2])
def test_the_fixes_are_clean_on_the_protocol_scenario(protocol: str, cpus: int) -> None:
    fs, summary = _findings(protocol, cpus)
    assert fs == [], [(f.kind, f.subject, f.stacks) for f in fs]
    assert summary["syscall_errors_total"] > 0          # the injected errors were hit


@pytest.mark.parametrize("scenario", [n for n in all_names() if n != "protocol"])
def test_biodoned_is_clean_on_every_scenario_with_errors_on_two_cpus(scenario: str) -> None:
    faults = [{"kind": "fraction", "fraction": 0.02, "op": "write"}]
    for cpus in (1, 2):
        fs, _ = _findings("biodoned", cpus, scenario, duration=2.0,
                          kernel={"faults": faults, "fs_blocks": 1 << 17})
        assert fs == [], [(f.kind, f.subject, f.stacks) for f in fs]


def test_findings_are_grouped_by_the_mails_rules_with_a_line_each() -> None:
    from vfslab.check.report import groups, text_report

    res = run_scenario(RunConfig(scenario="protocol", protocol="netbsd-2.0", check=True,
                                 duration_s=10))
    gs = groups(res.checker.findings())
    labels = [label for label, _ in gs]
    rules = [int(lb.split(":")[0].split()[1]) for lb in labels if lb.startswith("rule ")]
    assert rules == sorted(rules) and {3, 4, 5} <= set(rules)
    # rule 4 holds the mail's chain: biodone -> brelse -> brelvp -> holdrele -> v_interlock
    rule4 = next(g for lb, g in gs if lb.startswith("rule 4"))
    assert any(c[-4:] == ["brelse", "brelvp", "holdrele", "simple_lock(v_interlock)"]
               for f in rule4 for c in f.stacks)
    # vwakeup's v_flag write from the interrupt is rule 5
    rule5 = [f for lb, g in gs if lb.startswith("rule 5") for f in g]
    assert any(f.subject == "vnode.v_flag" and f.context.startswith("interrupt")
               for f in rule5)
    brief = text_report(res.checker, brief=True).splitlines()
    assert len(brief) == 2 + len(gs) and "WARNING" not in "\n".join(brief)


def test_run_check_fails_on_findings_as_check_does() -> None:
    from click.testing import CliRunner

    from vfslab.cli import cli

    res = CliRunner().invoke(cli, ["run", "protocol", "--check", "--duration", "5s"])
    assert res.exit_code == 1 and "rule 4" in res.output
    res = CliRunner().invoke(cli, ["check", "protocol", "--duration", "5s", "--protocols",
                                   "netbsd-2.0,biodoned", "--json"])
    import json

    doc = json.loads(res.output)
    assert res.exit_code == 1
    rows = doc["groups"]
    assert rows and all(v["biodoned"] == 0 and v["netbsd-2.0"] > 0 for v in rows.values())
