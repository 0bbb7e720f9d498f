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

# (row key, column label, scale: the column's unit is the key's divided by it; the op whose
# latency it is, if any: "—" when no run of the configuration made that call)
METRICS = [("fig.max_dirty_age_s", "max dirty age (s)", 1.0, None),
           ("fig.read_latency_p99_ms", "read p99 (ms)", 1.0, "read"),
           ("fig.peak_write_rate_bps", "peak write (MB/s)", 1e6, None),
           ("fig.max_dirty_bytes", "max dirty (MB)", 1e6, None),
           ("fig.fsync_latency_p99_ms", "fsync p99 (ms)", 1.0, "fsync")]
UNITS_NOTE = "MB = 10^6 bytes; ± is the 95% confidence interval of the mean across seeds"
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
        for m, _label, _scale, op in METRICS:
            vals = [float(r[m]) for r in rs if r.get(m) is not None]
            rec[m], rec[m + ".ci95"] = mean_ci(vals)
            if op is not None:
                rec[m + ".made"] = any((r.get(f"fig.{op}_ops") or 0) > 0 for r in rs)
        for m in ("window_s",):
            vals = [float(r[m]) for r in rs if r.get(m) is not None]
            rec[m], rec[m + ".ci95"] = mean_ci(vals)
        out.append(rec)
    return out


def sort_key(rec: dict[str, Any], params: list[str]) -> tuple[Any, ...]:
    """By each parameter's value: numbers as numbers (1, 2, 5, 10, 20), then text."""
    out: list[Any] = []
    for p in params:
        v = rec.get(p)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            out.append((1, 0.0, "" if v is None else str(v)))
        else:
            out.append((0, float(v), ""))
    return tuple(out)


def cell(rec: dict[str, Any], m: str, scale: float, op: str | None) -> str:
    """A mean ± CI in the column's unit, or — for a call no run made."""
    if op is not None and not rec.get(m + ".made", True):
        return "—"
    v, ci = rec[m], rec[m + ".ci95"]
    if v != v:
        return "—"
    v, ci = v / scale, ci / scale
    return _num(v) + ("" if ci != ci else f" ± {_num(ci)}")


def _num(x: float) -> str:
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 0.1 or a == 0:
        return f"{x:.2f}"
    return f"{x:.2g}"


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
    ci = _ci
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
        ax.set_title(f"max dirty age against {tun} (95% CI)")
        ax.legend()
        ax.grid(alpha=0.3)
        ax.ticklabel_format(useOffset=False, style="plain", axis="both")
        files.append(save_figure(fig, out / f"metric_vs_{tun.replace('.', '_')}.png"))
    # the trade-off, twice: against the age measured, and against the age promised
    for xkey, xlabel, name in (("fig.max_dirty_age_s", "max dirty age: data at risk (s)",
                                "tradeoff.png"),
                               ("window_s", "promised window: data a crash may lose (s)",
                                "tradeoff_window.png")):
        fig, ax = plt.subplots(figsize=(7, 5))
        by_pol2: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for rec in summary:
            if rec.get(xkey) == rec.get(xkey):          # not NaN
                by_pol2[rec["policy"]].append(rec)
        for pol, recs in sorted(by_pol2.items()):
            xs = [r[xkey] for r in recs]
            ys = [r["fig.read_latency_p99_ms"] for r in recs]
            eb = ax.errorbar(xs, ys, xerr=[ci(r, xkey) for r in recs],
                             yerr=[ci(r, "fig.read_latency_p99_ms") for r in recs],
                             fmt="o", capsize=3, alpha=0.8, label=pol)
            front = frontier(list(zip(xs, ys, strict=True)))
            ax.plot([p[0] for p in front], [p[1] for p in front], lw=1,
                    color=eb.lines[0].get_color())
        ax.set_xlabel(xlabel)
        ax.set_ylabel("read latency p99 (ms)")
        ax.set_title("trade-off: one point per configuration (95% CI), line = frontier")
        ax.legend()
        ax.grid(alpha=0.3)
        ax.ticklabel_format(useOffset=False, style="plain", axis="both")
        files.append(save_figure(fig, out / name))
    return files


def _ci(rec: dict[str, Any], key: str) -> float:
    v = rec.get(key + ".ci95", float("nan"))
    return 0.0 if v != v else float(v)


def frontier(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (lower is better), by x."""
    out: list[tuple[float, float]] = []
    best = float("inf")
    for x, y in sorted(pts):
        if y < best:
            out.append((x, y))
            best = y
    return out
