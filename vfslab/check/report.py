"""The validator's reports: text in the spirit of lockdep's splats for people, JSON for tools."""

from __future__ import annotations

from typing import Any

from vfslab.check.findings import KINDS, Finding


def to_json(checker: Any, protocol: str, scenario: str) -> dict[str, Any]:
    return {"protocol": protocol, "scenario": scenario,
            "findings": [f.as_json() for f in checker.findings()]}


def finding_text(f: Finding) -> str:
    bar = "=" * 72
    lines = [bar, f"WARNING: {f.kind}: {KINDS.get(f.kind, '')}",
             f"subject: {f.subject}", f"context: {f.context}",
             f"first seen at {f.first_seen_ns / 1e9:.6f} s, {f.count} time(s)", "",
             f.explanation]
    for d in f.details:
        lines.append(f"  {d}")
    for i, chain in enumerate(f.stacks):
        lines.append("")
        lines.append(f"chain #{i}:")
        for depth, fn in enumerate(chain):
            lines.append(f"  {'  ' * min(depth, 12)}{fn}")
    if f.scenario:
        lines.append("")
        lines.append(" Possible unsafe locking scenario:")
        lines.append("")
        lines.extend(f.scenario)
    return "\n".join(lines)


def text_report(checker: Any) -> str:
    fs = checker.findings()
    if not fs:
        return "vfslab check: no findings"
    counts: dict[str, int] = {}
    for f in fs:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    head = "vfslab check: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return "\n\n".join([head, *(finding_text(f) for f in fs)])
