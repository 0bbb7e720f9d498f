"""The validator's reports: text in the spirit of lockdep's splats for people, JSON for tools."""

from __future__ import annotations

import re
from typing import Any

from vfslab.check.findings import KINDS, Finding

# The mail's rules (the seed: "v_interlock/splbio protocol violations", 2004), as the groups a
# finding falls under when it breaks one; the rest are grouped by lock or field.
RULES = {
    2: "data accessed from inside biodone() must be protected by splbio(9)",
    3: "simple_locks taken from biodone() must be protected by splbio(9) everywhere",
    4: "v_interlock must not be taken from inside biodone()",
    5: "fields protected by v_interlock must not be accessed from inside biodone()",
}
_GUARD = re.compile(r"\(guarded by ([^)]+)\)")


def group_of(f: Finding) -> tuple[int, str]:
    """(rank, label) of the group a finding belongs to: the mail's rule it breaks first
    (rank = the rule's number), then splbio-only fields, then by kind and subject."""
    in_intr = f.context.startswith("interrupt")
    if f.kind == "irq-lock-inversion":
        if f.subject == "v_interlock":
            return 4, f"rule 4: {RULES[4]}"
        return 3, f"rule 3: {RULES[3]}: {f.subject}"
    if f.kind == "unguarded-access" and in_intr:
        m = _GUARD.search(f.explanation)
        guard = m.group(1) if m else ""
        # 2.0's v_interlock is the vnode's uvm_object lock (vnode.h: #define v_interlock
        # v_uobj.vmobjlock), so memq under vmobjlock is rule 5 too
        if "v_interlock" in guard or "vmobjlock" in guard:
            return 5, f"rule 5: {RULES[5]}: {f.subject}"
        return 2, f"rule 2: {RULES[2]}: {f.subject} (guarded by {guard or '?'})"
    if f.kind == "spl-only-guard":
        return 6, f"fields protected only by splbio (the mail's last paragraph): {f.subject}"
    return 7, f"{f.kind}: {f.subject}"


def groups(fs: list[Finding]) -> list[tuple[str, list[Finding]]]:
    """Findings grouped (group_of), the groups in rank order, then first seen."""
    by: dict[str, tuple[int, int, list[Finding]]] = {}
    for i, f in enumerate(fs):
        rank, label = group_of(f)
        if label not in by:
            by[label] = (rank, i, [])
        by[label][2].append(f)
    return [(label, g) for label, (_r, _i, g) in sorted(by.items(), key=lambda kv: kv[1][:2])]


def to_json(checker: Any, protocol: str, scenario: str) -> dict[str, Any]:
    fs = checker.findings()
    return {"protocol": protocol, "scenario": scenario,
            "findings": [{**f.as_json(), "group": group_of(f)[1],
                          "frames": [frames_json(c) for c in f.stacks]} for f in fs],
            "groups": [{"group": label, "findings": len(g),
                        "kinds": sorted({f.kind for f in g}), "times": sum(f.count for f in g)}
                       for label, g in groups(fs)]}


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
        lines.extend(chain_lines(chain))
    if f.scenario:
        lines.append("")
        lines.append(" Possible unsafe locking scenario:")
        lines.append("")
        lines.extend(f.scenario)
    return "\n".join(lines)


# how a frame's role is shown: the model's own helpers and the workload's code are not
# functions of the kernel modelled, and a reader hunting the C must know which is which
_ROLE_MARK = {"helper": "[vfslab helper]", "program": "[program]", "context": "[context]",
              "protocol": "[protocol]"}


def chain_lines(chain: list[str]) -> list[str]:
    """A chain as a report prints it: one frame a line, indented by depth, each with what it
    is when not a modelled kernel function, and the file:line of the call it was making."""
    rows = []
    for depth, fn in enumerate(chain):
        role = getattr(fn, "role", "")
        name = f"{'  ' * min(depth, 12)}{fn}"
        mark = _ROLE_MARK.get(role, f"[{role}]" if role else "")
        rows.append((name, mark, getattr(fn, "where", "")))
    wname = max((len(r[0]) for r in rows), default=0)
    wmark = max((len(r[1]) for r in rows), default=0)
    return [f"  {n:<{wname}}  {m:<{wmark}}  {w}".rstrip() for n, m, w in rows]


def frames_json(chain: list[str]) -> list[dict[str, str]]:
    """A chain for JSON: each frame's function, role ("" for a modelled kernel function) and
    file:line."""
    return [{"function": str(fn), "role": getattr(fn, "role", ""),
             "at": getattr(fn, "where", "")} for fn in chain]


def kernel_frames(chain: list[str]) -> list[str]:
    """The chain without the frames that are not modelled kernel functions (helpers folded
    into their callers, the program and the context entry left out)."""
    return [fn for fn in chain if not getattr(fn, "role", "")]


def _reaches(chain: list[str], subject: str) -> bool:
    """Whether a chain ends in taking the lock `subject` (its named last frame)."""
    return bool(chain) and chain[-1].endswith(f"({subject})")


def summary_lines(fs: list[Finding]) -> list[str]:
    """One line per group: its label, how many findings of which kinds, and the innermost
    frames of its first chain."""
    out = []
    for label, g in groups(fs):
        kinds = ", ".join(sorted({f.kind for f in g}))
        chains = [(f, c) for f in g for c in f.stacks]
        # the chain through biodone if there is one (that is where the rules are broken),
        # one that takes the group's lock or touches its field first
        first = next((c for f, c in chains if "biodone" in c and _reaches(c, f.subject)),
                     next((c for _f, c in chains if "biodone" in c),
                          chains[0][1] if chains else []))
        tail = " -> ".join(kernel_frames(first)[-5:])
        out.append(f"  {label}  [{len(g)} finding{'s' if len(g) > 1 else ''}: {kinds}]"
                   + (f"  ({tail})" if tail else ""))
    return out


def text_report(checker: Any, brief: bool = False) -> str:
    """The counts, one line per group, then (unless `brief`) each finding in full, group by
    group."""
    fs = checker.findings()
    if not fs:
        return "vfslab check: no findings"
    counts: dict[str, int] = {}
    for f in fs:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    head = "vfslab check: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    ngroups = len(groups(fs))
    lines = [head, f"{ngroups} groups, the mail's rules first:", *summary_lines(fs)]
    if brief:
        return "\n".join(lines)
    parts = ["\n".join(lines)]
    for label, g in groups(fs):
        parts.append(f"######## {label}")
        parts.extend(finding_text(f) for f in g)
    return "\n\n".join(parts)
