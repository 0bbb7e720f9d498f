"""Fault injection: fail the Nth request, any request touching a block range (reads, writes or
both), or a seeded fraction of requests, with EIO. A failed write leaves the disk unchanged."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from vfslab.errors import InputError


@dataclass
class FaultRule:
    kind: str                 # "nth" | "range" | "fraction"
    op: str = "any"           # "read" | "write" | "any"
    nth: int = 0
    start: int = 0            # first 4 KiB block of the range
    end: int = 0              # one past the last
    fraction: float = 0.0
    start_s: float = 0.0      # active from this emulated time (seconds since boot)
    count: int = 0            # how many times it fired

    def applies(self, read: bool) -> bool:
        return self.op == "any" or (self.op == "read") == read


class FaultInjector:
    def __init__(self, rng: random.Random, rules: list[FaultRule] | None = None) -> None:
        self.rng = rng
        self.rules = list(rules or [])
        self.failed = 0
        # while the runner lays out a scenario's pre-existing files: the rules model the disk
        # of the run, and a scenario that cannot be set up cannot run (found by the validator
        # test's 2% write faults on pr24596's twelve files)
        self.suspended = False

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def should_fail(self, read: bool, blk: int, n: int, reqno: int, now: int = 0) -> bool:
        if self.suspended:
            return False
        hit = False
        for r in self.rules:
            if not r.applies(read) or now < r.start_s * 1e9:
                continue
            if r.kind == "nth":
                ok = reqno == r.nth
            elif r.kind == "range":
                ok = blk < r.end and blk + n > r.start and (
                    not r.fraction or self.rng.random() < r.fraction)
            else:
                ok = self.rng.random() < r.fraction
            if ok:
                r.count += 1
                hit = True
        if hit:
            self.failed += 1
        return hit


def rules_from_config(items: list[dict[str, Any]]) -> list[FaultRule]:
    """Fault rules from scenario/config dicts: {"kind": "fraction", "fraction": 0.01,
    "op": "write"}, {"kind": "range", "start": 100, "end": 200} (optionally with a
    "fraction" of the requests in the range), {"kind": "nth", "nth": 7}; any of them with
    "start_s" (seconds since boot) to spare the mount."""
    out = []
    for i, d in enumerate(items):
        if not isinstance(d, dict):
            raise InputError(f"fault #{i + 1}: expected a table, got {d!r}")
        kind = d.get("kind")
        op = d.get("op", "any")
        if op not in ("read", "write", "any"):
            raise InputError(f"fault #{i + 1}: op: expected read, write or any, got {op!r}")
        unknown = set(d) - {"kind", "op", "nth", "start", "end", "fraction", "start_s"}
        if unknown:
            raise InputError(f"fault #{i + 1}: unknown key {sorted(unknown)[0]!r}; expected "
                             "kind, op, nth, start, end, fraction or start_s")
        try:
            start_s = float(d.get("start_s", 0.0))
            if kind == "nth":
                out.append(FaultRule("nth", op, nth=int(d["nth"])))
            elif kind == "range":
                f = float(d.get("fraction", 0.0))
                if not 0.0 <= f <= 1.0:
                    raise ValueError("fraction must be within 0 and 1")
                out.append(FaultRule("range", op, start=int(d["start"]), end=int(d["end"]),
                                     fraction=f))
            elif kind == "fraction":
                f = float(d["fraction"])
                if not 0.0 <= f <= 1.0:
                    raise ValueError("fraction must be within 0 and 1")
                out.append(FaultRule("fraction", op, fraction=f))
            else:
                raise InputError(f"fault #{i + 1}: kind: expected nth, range or fraction, "
                                 f"got {kind!r}")
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"fault #{i + 1} ({kind}): {e}") from None
        out[-1].start_s = start_s
    return out
