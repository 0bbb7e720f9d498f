"""`vfslab bench stack`: emulated 4 KiB page writes per wall-clock second for a streaming
writer end to end (write(2) through the page cache, putpages, the disk and its interrupt,
aiodoned), and Python memory per resident page.

The peer, measured in the same run, is the floor of any Python page cache: a loop that puts
one small object per 4 KiB page into a dict. The ratio says how many such floors one emulated
page write costs.
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from typing import Any

import click

PAGE = 4096


def _stream_run(mb: int, physmem_mb: int, measure_memory: bool) -> dict[str, Any]:
    from vfslab.runner import RunConfig, run_scenario
    from vfslab.scenario import ProcessSpec, Scenario
    from vfslab.scenarios.builtin import paced_writer

    sc = Scenario("bench-stream", "streaming writer, as fast as the disk allows",
                  [ProcessSpec("writer", paced_writer("/bench.dat", mb * 1024 * 1024,
                                                     64 * 1024, 0, wrap=False))],
                  duration_s=3600.0,
                  kernel={"physmem_mb": physmem_mb, "disk": "ssd",
                          "fs_blocks": max(1 << 16, (mb * 2) * 256)})
    if measure_memory:
        gc.collect()
        tracemalloc.start()
    t0 = time.perf_counter()
    res = run_scenario(RunConfig(scenario=sc, duration_s=mb / 50.0 + 5.0))
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"wall_s": wall, "pages": res.summary["bytes_written"] // PAGE,
                           "disk_bytes": res.summary["disk_bytes_written"]}
    if measure_memory:
        gc.collect()
        cur, _peak = tracemalloc.get_traced_memory()
        uvm = res.kernel.uvm
        resident = uvm.npages - uvm.free
        out["resident_pages"] = resident
        out["python_bytes"] = cur
        tracemalloc.stop()
    return out


def _peer_pages_per_s(n: int) -> float:
    class Page:
        __slots__ = ("off", "stamp", "flags")

        def __init__(self, off: int, stamp: int) -> None:
            self.off = off
            self.stamp = stamp
            self.flags = 0

    cache: dict[int, Page] = {}
    t0 = time.perf_counter()
    for i in range(n):
        cache[i] = Page(i, i)
    return n / (time.perf_counter() - t0)


@click.command()
@click.option("--mb", type=click.IntRange(16, 4096), default=256, show_default=True,
              help="MiB the writer streams")
@click.option("--json", "as_json", is_flag=True)
def stack(mb: int, as_json: bool) -> None:
    """Page writes per second end to end, and bytes of Python memory per resident page."""
    speed = _stream_run(mb, physmem_mb=max(64, mb // 2), measure_memory=False)
    pages_per_s = speed["pages"] / speed["wall_s"]
    mem = _stream_run(64, physmem_mb=256, measure_memory=True)
    per_page = mem["python_bytes"] / max(1, mem["resident_pages"])
    peer = _peer_pages_per_s(200_000)
    out = {
        "page_writes_per_s": pages_per_s,
        "bytes_per_resident_page": per_page,
        "peer_dict_pages_per_s": peer,
        "ratio_to_peer": pages_per_s / peer,
        "target_page_writes_per_s": 100_000,
        "target_bytes_per_resident_page": 1024,
        "pages": speed["pages"],
        "wall_s": speed["wall_s"],
        "resident_pages": mem["resident_pages"],
    }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"streaming writer: {speed['pages']:,} pages in {speed['wall_s']:.2f} s wall")
    click.echo(f"  page writes per second: {pages_per_s:,.0f} (target 100,000: "
               f"{pages_per_s / 100_000:.2f}x)")
    click.echo(f"  peer (dict of page objects): {peer:,.0f} pages/s; vfslab is "
               f"{pages_per_s / peer:.3f}x of it")
    click.echo(f"  Python memory per resident page: {per_page:,.0f} bytes "
               f"({mem['resident_pages']:,} pages resident; target < 1024)")
