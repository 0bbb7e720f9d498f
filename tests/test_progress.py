"""Progress bars: on a terminal only, and a run is the same with and without one."""

from __future__ import annotations

import io
from typing import Any

import pytest
from click.testing import CliRunner

from vfslab.cli import cli
from vfslab.commands import progress as prog
from vfslab.runner import RunConfig, run_scenario


def test_progress_is_only_for_a_terminal_and_never_with_json(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not prog.wanted()                      # a pipe or a file
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert prog.wanted() and not prog.wanted(as_json=True)


def test_a_run_with_a_progress_callback_is_the_same_run() -> None:
    seen: list[tuple[float, float]] = []
    plain = run_scenario(RunConfig(scenario="stream", duration_s=3))
    watched = run_scenario(RunConfig(scenario="stream", duration_s=3,
                                     on_progress=lambda d, t: seen.append((d, t))))
    assert len(seen) >= 25 and seen[-1][1] == 3 and 2.8 <= seen[-1][0] <= 3.0
    strip = {"wall_s"}
    assert {k: v for k, v in plain.summary.items() if k not in strip} == \
        {k: v for k, v in watched.summary.items() if k not in strip}


def test_commands_draw_bars_on_a_terminal_and_print_the_same_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["compare", "stream", "--duration", "1s", "--no-out", "--policies", "syncer,trickle"]
    piped = CliRunner().invoke(cli, args)
    monkeypatch.setattr(prog, "wanted", lambda as_json=False: not as_json)
    drawn: list[Any] = []
    real = prog.progress

    def spy(*a: Any, **kw: Any) -> Any:
        drawn.append(a)
        return real(*a, **kw)

    monkeypatch.setattr(prog, "progress", spy)
    tty = CliRunner().invoke(cli, args)
    assert piped.exit_code == tty.exit_code == 0
    assert drawn and drawn[0][:2] == ("compare", 2)
    table = [line for line in tty.output.splitlines() if line.startswith(("│", "┃"))]
    assert table == [line for line in piped.output.splitlines() if line.startswith(("│", "┃"))]


def test_fsck_reports_its_progress_through_the_inode_table() -> None:
    from vfslab.fs.fsck import fsck_image
    from vfslab.fs.ufs_layout import layout, mkfs

    store: dict[int, Any] = {}
    mkfs(store, 1 << 16, 65536)
    sb = layout(1 << 16, 65536)
    seen: list[tuple[int, int]] = []
    assert fsck_image(store, 1 << 16, lambda done, total: seen.append((done, total))) == []
    assert seen and all(t == sb.itable_blocks for _, t in seen)
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[0] == 0 and len(done) == -(-sb.itable_blocks // 256)
