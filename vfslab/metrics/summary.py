"""The figures that decide between writeback designs, from one run's measurements.

- peak_write_rate_bps: the largest disk write rate over any one-second window (a rolling sum
  of the sampled series);
- mean_dirty_rate_bps: bytes that went from clean to dirty (pages and buffers) per second;
- max_dirty_bytes, max_dirty_age_s: the backlog and the age of the oldest dirty data at its
  worst: what a crash would have lost;
- max_unlisted_dirty_pages, max_unlisted_dirty_age_s: PR kern/24596's symptom at its worst, dirty
  pages whose vnode is on no slot of the syncer's worklist and the age of the oldest of them
  (Metrics.unlisted_dirty says what is and is not counted);
- max_unknown_dirty_pages, max_unknown_dirty_age_s: pages modified through a writable mapping
  while the kernel counted them clean (the PR's problem 3), at their worst;
- read/write/fsync latency percentiles (write latency includes throttling);
- disk_bytes_written (in the measured window) and disk_bytes_to_durable, which adds the
  backlog still dirty at the end (each dirty page and buffer written once), so that designs
  that leave more in memory are not credited with writing less;
- write_amplification: disk bytes per byte dirtied (below 1: overwrites absorbed);
- peak_dirty_rate_bps: the largest dirtying rate over any one-second window;
- peak_write_bound_bps: the lowest peak one-second write rate any writeback that keeps the
  policy's promise could have had on this run's dirtying: the bytes dirtied in an interval
  of L seconds must all reach the disk within L + window seconds of its start, so some
  second of those writes at least bytes / (L + window). The largest such quotient over every
  interval up to 20 windows long (longer ones only approach the mean rate) is a lower bound
  (each byte dirtied written once; merging rewrites or clustering can move it either way).
"""

from __future__ import annotations

from typing import Any

import numpy as np

PAGE = 4096


def _peak_write_bound(per_sample: np.ndarray, dt: float, window: float) -> float:
    """The lowest possible peak write rate (module docstring): max over intervals of
    bytes dirtied / (interval + window), intervals up to 20 windows (and at least a second)."""
    n = per_sample.size
    if n == 0:
        return 0.0
    cs = np.concatenate(([0.0], np.cumsum(per_sample)))
    longest = min(n, max(1, round(max(20 * window, 1.0) / dt)))
    best = 0.0
    for L in range(1, longest + 1):
        most = float((cs[L:] - cs[:-L]).max())
        best = max(best, most / (L * dt + window))
    return best


def figures(k: Any, elapsed_s: float) -> dict[str, Any]:
    met = k.metrics
    s = met.series
    w = np.asarray(s["disk_write_bps"], dtype=float)
    per = max(1, round(1e9 / met.interval_ns))
    if w.size >= per:
        peak = float(np.convolve(w, np.ones(per) / per, mode="valid").max())
    else:
        peak = float(w.mean()) if w.size else 0.0
    d = np.asarray(s["dirtied_bps"], dtype=float)
    peak_dirty = float(np.convolve(d, np.ones(per) / per, mode="valid").max()) \
        if d.size >= per else (float(d.mean()) if d.size else 0.0)
    bound = _peak_write_bound(d * (met.interval_ns / 1e9), met.interval_ns / 1e9,
                              float(k.policy.window_s()) if hasattr(k, "policy") else 0.0)
    # pages dirtied through a mapping count once, whether or not the kernel learnt of it
    dirtied_pages = (k.uvm.stats.pagesdirtied + k.pmap.dirtied - k.pmap.relisted
                     - met.dirtied0)
    dirtied_bufs = k.bio.stats.bufs_dirtied - met.bufs_dirtied0
    bytes_dirtied = (dirtied_pages + dirtied_bufs) * PAGE
    disk_written = k.disk.stats.bytes_written - met.disk0[1]
    dirty_end = (k.uvm.ndirty + len(k.pmap.unknown) + k.bio.ndirty) * PAGE
    lat = met.latency_summary()
    el = max(elapsed_s, 1e-9)

    def p(op: str, q: str) -> float:
        return float(lat[op][q]) if op in lat else 0.0

    return {
        "peak_write_rate_bps": peak,
        "mean_dirty_rate_bps": bytes_dirtied / el,
        "peak_dirty_rate_bps": peak_dirty,
        "peak_write_bound_bps": bound,
        "mean_write_rate_bps": disk_written / el,
        "max_dirty_bytes": int(met.max_dirty_bytes),
        "max_dirty_age_s": met.max_dirty_age_ns / 1e9,
        "max_unlisted_dirty_pages": int(met.max_unlisted_pages),
        "max_unlisted_dirty_age_s": met.max_unlisted_age_ns / 1e9,
        "max_unknown_dirty_pages": int(met.max_unknown_pages),
        "max_unknown_dirty_age_s": met.max_unknown_age_ns / 1e9,
        "read_latency_p50_ms": p("read", "p50_ms"),
        "read_latency_p99_ms": p("read", "p99_ms"),
        "read_latency_max_ms": p("read", "max_ms"),
        "write_latency_p50_ms": p("write", "p50_ms"),
        "write_latency_p99_ms": p("write", "p99_ms"),
        "write_latency_max_ms": p("write", "max_ms"),
        "fsync_latency_p50_ms": p("fsync", "p50_ms"),
        "fsync_latency_p99_ms": p("fsync", "p99_ms"),
        "fsync_latency_max_ms": p("fsync", "max_ms"),
        # how many samples each latency stands on (0: the figures above are not measured)
        "read_ops": len(met.lat.get("read", ())),
        "write_ops": len(met.lat.get("write", ())),
        "fsync_ops": len(met.lat.get("fsync", ())),
        "bytes_dirtied": int(bytes_dirtied),
        "disk_bytes_written": int(disk_written),
        "dirty_bytes_end": int(dirty_end),
        "disk_bytes_to_durable": int(disk_written + dirty_end),
        "write_amplification": (disk_written + dirty_end) / bytes_dirtied if bytes_dirtied else 0.0,
        "throughput_write_bps": sum(pr.bytes_written for pr in k.procs) / el,
        "throughput_read_bps": sum(pr.bytes_read for pr in k.procs) / el,
        "throttled_max": int(max(s["throttled"], default=0)),
    }


def protocol_costs(k: Any, elapsed_s: float, operations: int) -> dict[str, Any]:
    """What a locking protocol costs the CPU: time at or above IPL_BIO, interrupt latency per
    level, I/O completion latency (wakeup to running), context switches, CPU per operation."""
    from vfslab.sim.ipl import ipl_name

    m = k.m
    el_ns = max(1.0, elapsed_s * 1e9)
    cpus = m.cpus
    bio_ns = sum(c.bio_ns for c in cpus)
    busy_ns = sum(c.busy_ns for c in cpus)
    lat = {ipl_name(lvl): {"count": r[0], "mean_us": r[1] / r[0] / 1e3 if r[0] else 0.0,
                           "max_us": r[2] / 1e3}
           for lvl, r in m.intr_latency().items()}
    wl = m.stats.wakeup_latency
    return {
        "ipl_bio_time_frac": bio_ns / (el_ns * len(cpus)),
        "ipl_bio_ms_per_s": bio_ns / 1e6 / max(elapsed_s, 1e-9),
        "interrupt_latency": lat,
        "completion_latency_mean_us": wl[1] / wl[0] / 1e3 if wl[0] else 0.0,
        "completion_latency_max_us": wl[2] / 1e3,
        "context_switches": m.stats.nswitch,
        "cpu_us_per_op": busy_ns / 1e3 / max(1, operations),
        "cpu_busy_frac": busy_ns / (el_ns * len(cpus)),
    }
