"""A sweep's results: an append-only Parquet dataset in the output directory, one file per
batch of finished runs, readable with DuckDB (`read_parquet('DIR/*.parquet',
union_by_name=true)`) or pyarrow. The run ids already there are what `--resume` skips.

A part that cannot be read (truncated, corrupt) is named in `skipped` and left out: its runs
are not counted as done, so `--resume` runs them again, and `report` says what it left out.
A new part never takes the name of one that exists (the next number after the highest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


class ResultStore:
    def __init__(self, out: str | Path, batch: int = 8) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.batch = batch
        self.pending: list[dict[str, Any]] = []
        self.skipped: list[tuple[Path, str]] = []
        nums = [int(f.stem.partition("-")[2]) for f in self.out.glob("part-*.parquet")
                if f.stem.partition("-")[2].isdigit()]
        self.nfiles = max(nums) + 1 if nums else 0

    def done_ids(self) -> set[str]:
        """Runs already recorded, failed ones included: a run is deterministic in its seed,
        so running a failed point again would only record the same failure twice."""
        return {r["run_id"] for r in self.rows()}

    def rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self.skipped = []
        for f in sorted(self.out.glob("part-*.parquet")):
            try:
                out.extend(pq.read_table(f).to_pylist())
            except (pa.ArrowInvalid, OSError) as e:
                self.skipped.append((f, str(e).splitlines()[0] if str(e) else type(e).__name__))
        return out

    def append(self, row: dict[str, Any]) -> None:
        self.pending.append(row)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        keys: list[str] = []
        for r in self.pending:
            for k in r:
                if k not in keys:
                    keys.append(k)
        table = pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in self.pending])
        while (self.out / f"part-{self.nfiles:06d}.parquet").exists():
            self.nfiles += 1                  # never over a part that holds rows
        tmp = self.out / f".part-{self.nfiles:06d}.tmp"
        pq.write_table(table, tmp)
        tmp.rename(self.out / f"part-{self.nfiles:06d}.parquet")   # atomic: no half files
        self.nfiles += 1
        self.pending = []
