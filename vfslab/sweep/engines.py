"""Where the runs of a sweep execute: a local process pool (default), Ray, or Dask. One
interface: `execute(points, on_row)` calls `on_row(row)` as each run finishes; the run is the
same function everywhere, so the rows are the same whichever engine ran them."""

from __future__ import annotations

import importlib
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from vfslab.errors import InputError
from vfslab.failure import RunFailure

Row = dict[str, Any]


def resolve(fn_path: str) -> Callable[[dict[str, Any]], Row]:
    mod, _, name = fn_path.partition(":")
    f: Callable[[dict[str, Any]], Row] = getattr(importlib.import_module(mod), name)
    return f


def _call(fn_path: str, point: dict[str, Any]) -> Row:
    """Run one point; a run that raises becomes a failed row and the sweep goes on."""
    try:
        return resolve(fn_path)(point)
    except Exception as e:
        from vfslab.sweep.spec import run_id

        return {"run_id": run_id(point), **{f"param.{k}": v for k, v in point.items()},
                "status": "failed", **failure_fields(e)}


def failure_fields(e: Exception) -> Row:
    """A failed row's error: a RunFailure's report (whose code, where) and the fields to make
    it again in the parent (`reraise`); anything else by its type and message."""
    if isinstance(e, RunFailure):
        return {"error": str(e), "error_plugin": e.plugin, "error_detail": e.detail}
    return {"error": f"{type(e).__name__}: {e}"}


def reraise(row: Row) -> None:
    """A failed row that a RunFailure made is raised again as one (the command line says it
    and exits with its code); other failures are for the caller to report."""
    if "error_plugin" in row:
        raise RunFailure(str(row["error"]), bool(row["error_plugin"]),
                         str(row.get("error_detail", "")))


def execute(points: list[dict[str, Any]], on_row: Callable[[Row], None], engine: str = "local",
            workers: int | None = None, address: str | None = None,
            fn: str = "vfslab.sweep.point:run_point") -> None:
    if not points:
        return
    if engine == "local":
        _local(points, on_row, workers or multiprocessing.cpu_count(), fn)
    elif engine == "ray":
        _ray(points, on_row, workers, address, fn)
    elif engine == "dask":
        _dask(points, on_row, workers, address, fn)
    else:
        raise InputError(f"--engine: expected local, ray or dask, got {engine!r}")


def _local(points: list[dict[str, Any]], on_row: Callable[[Row], None], workers: int,
           fn: str) -> None:
    if workers <= 1:
        for p in points:
            on_row(_call(fn, p))
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futs = [pool.submit(_call, fn, p) for p in points]
        for fut in as_completed(futs):
            on_row(fut.result())


def _ray(points: list[dict[str, Any]], on_row: Callable[[Row], None], workers: int | None,
         address: str | None, fn: str) -> None:
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray: Ray is not installed (pip install 'vfslab[ray]')") \
            from None
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "ignore_reinit_error": True}
        if address:
            kw["address"] = address
        elif workers:
            kw["num_cpus"] = workers
        ray.init(**kw)
        started = True
    try:
        remote = ray.remote(_call)
        pending = [remote.remote(fn, p) for p in points]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                on_row(ray.get(ref))
    finally:
        if started and not address:
            ray.shutdown()


def _dask(points: list[dict[str, Any]], on_row: Callable[[Row], None], workers: int | None,
          address: str | None, fn: str) -> None:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise InputError("--engine dask: Dask is not installed (pip install 'vfslab[dask]')") \
            from None
    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(n_workers=workers or multiprocessing.cpu_count(),
                               threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futs = client.map(_call, [fn] * len(points), points, pure=False)
        for fut in dask_completed(futs):
            on_row(fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
