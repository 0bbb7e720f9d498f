"""Reading a vfslab trace back (for `vfslab trace` and the tests): tracks, and their slices
paired from begin and end events the way the trace processor pairs them (in time order, an
end closing the innermost open slice), with their arguments and flows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace, TrackEvent

BEGIN, END, INSTANT, COUNTER = (TrackEvent.TYPE_SLICE_BEGIN, TrackEvent.TYPE_SLICE_END,
                                TrackEvent.TYPE_INSTANT, TrackEvent.TYPE_COUNTER)


@dataclass
class Event:
    t: int
    kind: int
    name: str
    args: dict[str, Any]
    flows: list[int] = field(default_factory=list)
    ends_flows: list[int] = field(default_factory=list)
    value: float = 0.0


@dataclass
class Slice:
    track: str
    start: int
    dur: int
    name: str
    depth: int
    args: dict[str, Any]


class TraceFile:
    """A whole trace in memory: `tracks` (uuid -> descriptor) and `events` (uuid -> in file
    order)."""

    def __init__(self, path: str | Path) -> None:
        tr = Trace()
        tr.ParseFromString(Path(path).read_bytes())
        self.packets = len(tr.packet)
        names: dict[int, str] = {}
        self.tracks: dict[int, Any] = {}
        self.events: dict[int, list[Event]] = {}
        for p in tr.packet:
            for en in p.interned_data.event_names:
                names[en.iid] = en.name
            if p.HasField("track_descriptor"):
                self.tracks[p.track_descriptor.uuid] = p.track_descriptor
            if p.HasField("track_event"):
                te = p.track_event
                args = {a.name: (a.string_value if a.HasField("string_value") else
                                 a.double_value if a.HasField("double_value") else
                                 a.int_value) for a in te.debug_annotations}
                value = (te.double_counter_value if te.HasField("double_counter_value")
                         else float(te.counter_value))
                self.events.setdefault(te.track_uuid, []).append(Event(
                    p.timestamp, te.type, names.get(te.name_iid, te.name), args,
                    list(te.flow_ids), list(te.terminating_flow_ids), value))

    def workload_start(self) -> int:
        """When the measured run began (ns from boot; 0 if the trace does not say)."""
        for evs in self.events.values():
            for ev in evs:
                if ev.kind == INSTANT and ev.name == "workload starts":
                    return ev.t
        return 0

    def name(self, uuid: int) -> str:
        d = self.tracks[uuid]
        if d.HasField("process"):
            return f"{d.process.process_name} (pid {d.process.pid})"
        return str(d.name)

    def is_process(self, uuid: int) -> bool:
        """A process's track or one of its lanes."""
        d = self.tracks[uuid]
        return d.HasField("process") or (
            d.parent_uuid in self.tracks and self.tracks[d.parent_uuid].HasField("process"))

    def group(self, uuid: int) -> str:
        """The top-level group a track is under ("CPUs", "locks", ...; "processes")."""
        d = self.tracks[uuid]
        while d.parent_uuid:
            d = self.tracks[d.parent_uuid]
        return "processes" if d.HasField("process") else str(d.name)

    def slices(self, uuid: int) -> list[Slice]:
        """The track's slices, paired; an end that names another slice than the innermost
        open one raises ValueError (the trace would be drawn wrong)."""
        out: list[Slice] = []
        stack: list[Event] = []
        for ev in sorted(self.events.get(uuid, []), key=lambda e: e.t):
            if ev.kind == BEGIN:
                stack.append(ev)
            elif ev.kind == END:
                if not stack or (ev.name and stack[-1].name != ev.name):
                    raise ValueError(f"{self.name(uuid)}: at {ev.t} ns an end of {ev.name!r} "
                                     f"while {stack[-1].name if stack else 'nothing'!r} is "
                                     f"open")
                b = stack.pop()
                out.append(Slice(self.name(uuid), b.t, ev.t - b.t, b.name, len(stack),
                                 b.args))
        if stack:
            raise ValueError(f"{self.name(uuid)}: {len(stack)} slices never end")
        return out


__all__ = ["BEGIN", "COUNTER", "END", "INSTANT", "Event", "Slice", "TraceFile"]
