"""PNG plots of runs: dirty backlog over time, disk write throughput over time, latency CDFs;
one line per run (policy or protocol) when comparing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, write at the one resolution every vfslab plot uses, and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _series(runs: dict[str, Any], key: str, scale: float) -> list[tuple[str, Any, Any]]:
    out = []
    for label, k in runs.items():
        s = k.metrics.series
        t = np.asarray(s["t_s"]) - (s["t_s"][0] if s["t_s"] else 0)
        out.append((label, t, np.asarray(s[key], dtype=float) / scale))
    return out


def _line_plot(runs: dict[str, Any], key: str, ylabel: str, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4))
    for label, t, y in _series(runs, key, 1e6):
        ax.plot(t, y, label=label, lw=1.1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_runs(runs: dict[str, Any], out: str | Path, title: str) -> list[Path]:
    """`runs` maps a label to a finished Kernel; writes three PNGs into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    files.append(_line_plot(runs, "dirty_bytes", "dirty data not yet under write (MB)",
                            f"{title}: dirty backlog", out / "dirty_backlog.png"))
    files.append(_line_plot(runs, "disk_write_bps", "disk writes (MB/s, 100 ms bins)",
                            f"{title}: write throughput", out / "write_throughput.png"))

    ops = ["read", "write", "fsync"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for ax, op in zip(axes, ops, strict=True):
        any_data = False
        for label, k in runs.items():
            v = np.sort(np.asarray(k.metrics.lat.get(op, []), dtype=float) / 1e6)
            if v.size:
                any_data = True
                ax.plot(v, np.arange(1, v.size + 1) / v.size, label=label, lw=1.2)
        if not any_data:
            ax.text(0.5, 0.5, f"no {op} calls", ha="center", va="center",
                    transform=ax.transAxes)
        else:
            ax.set_xscale("log")
        ax.set_xlabel(f"{op} latency (ms)")
        ax.set_ylabel("fraction of calls")
        ax.set_title(op)
        ax.grid(alpha=0.3)
    if any(k.metrics.lat.get("read") for k in runs.values()):
        axes[0].legend()
    fig.suptitle(f"{title}: latency CDFs")
    files.append(save_figure(fig, out / "latency_cdf.png"))
    return files
