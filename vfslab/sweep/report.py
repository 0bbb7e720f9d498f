"""`vfslab report DIR`: summary tables (mean and 95% confidence interval across seeds, per
configuration) and plots: a metric against each tunable that varies, per policy, and the
trade-off of max dirty age against p99 read latency, one point per configuration, with each
policy's frontier."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from vfslab.metrics.plots import save_figure

METRICS = [("fig.max_dirty_age_s", "max dirty age (s)"),
           ("fig.read_latency_p99_ms", "read p99 (ms)"),
           ("fig.peak_write_rate_bps", "peak write (B/s)"),
           ("fig.max_dirty_bytes", "max dirty (B)"),
           ("fig.fsync_latency_p99_ms", "fsync p99 (ms)")]
# two-sided 95% Student t critical values by degrees of freedom (>30: normal)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def t95(df: int) -> float:
    if df <= 0:
        return float("nan")
    for k in sorted(_T95):
        if df <= k:
            return _T95[k]
    return 1.96


def mean_ci(vals: list[float]) -> tuple[float, float]:
    n = len(vals)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(vals) / n
    if n == 1:
        return m, float("nan")
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (n - 1))
    return m, t95(n - 1) * sd / math.sqrt(n)


def configs(rows: list[dict[str, Any]]) -> dict[tuple[tuple[str, Any], ...], list[dict[str, Any]]]:
    groups: dict[tuple[tuple[str, Any], ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("status") != "ok":
            continue
        key = tuple(sorted((k[6:], v) for k, v in r.items()
                           if k.startswith("param.") and k != "param.seed" and v is not None))
        groups[key].append(r)
    return groups


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for key, rs in configs(rows).items():
        rec: dict[str, Any] = dict(key)
        rec["runs"] = len(rs)
        for m, _ in METRICS:
            vals = [float(r[m]) for r in rs if r.get(m) is not None]
            rec[m], rec[m + ".ci95"] = mean_ci(vals)
        out.append(rec)
    return out


def varying(summary: list[dict[str, Any]]) -> list[str]:
    keys = {k for rec in summary for k in rec if "." in k and not k.startswith("fig.")}
    out = []
    for k in sorted(keys):
        vals = {rec.get(k) for rec in summary if rec.get(k) is not None}
        if len(vals) > 1 and all(isinstance(v, (int, float)) for v in vals):
            out.append(k)
    return out


def plots(summary: list[dict[str, Any]], out: Path) -> list[Path]:
    files = []
    for tun in varying(summary):
        fig, ax = plt.subplots(figsize=(7, 4))
        by_pol: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        for rec in summary:
            if rec.get(tun) is None:
                continue
            by_pol[rec["policy"]].append((rec[tun], rec["fig.max_dirty_age_s"],
                                          rec["fig.max_dirty_age_s.ci95"]))
        for pol, pts in sorted(by_pol.items()):
            pts.sort()
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                        yerr=[0 if math.isnan(p[2]) else p[2] for p in pts], marker="o",
                        label=pol, capsize=3)
        ax.set_xlabel(tun)
        ax.set_ylabel("max dirty age (s)")
        ax.set_title(f"max dirty age against {tun}")
        ax.legend()
        ax.grid(alpha=0.3)
        files.append(save_figure(fig, out / f"metric_vs_{tun.replace('.', '_')}.png"))
    fig, ax = plt.subplots(figsize=(7, 5))
    by_pol2: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for rec in summary:
        by_pol2[rec["policy"]].append((rec["fig.max_dirty_age_s"],
                                       rec["fig.read_latency_p99_ms"]))
    for pol, pts2 in sorted(by_pol2.items()):
        sc = ax.scatter([p[0] for p in pts2], [p[1] for p in pts2], label=pol, alpha=0.8)
        front = frontier(pts2)
        ax.plot([p[0] for p in front], [p[1] for p in front], lw=1,
                color=sc.get_facecolor()[0])
    ax.set_xlabel("max dirty age: data at risk (s)")
    ax.set_ylabel("read latency p99 (ms)")
    ax.set_title("trade-off: one point per configuration, line = frontier")
    ax.legend()
    ax.grid(alpha=0.3)
    files.append(save_figure(fig, out / "tradeoff.png"))
    return files


def frontier(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (lower is better), by x."""
    out: list[tuple[float, float]] = []
    best = float("inf")
    for x, y in sorted(pts):
        if y < best:
            out.append((x, y))
            best = y
    return out
