"""A Perfetto trace written as the run goes: tracks, slices, instants, counters and flows as
TracePackets (the perfetto package's protobuf classes), built in its TraceProtoBuilder and
written out every `CHUNK` packets, so memory stays flat however long the run. (Its
StreamingTraceProtoBuilder copies each packet into a Trace of its own before writing it:
measured at twice the cost per packet, which a trace of every lock hold cannot afford.)

One packet sequence; event names are interned (the first packet naming one carries it);
timestamps are the emulated clock in ns. Tracks are declared on first use. Slices on one
track must nest, so where holds or calls overlap without nesting (two holders of one lock
class, two threads of one process in system calls) `Lanes` gives each its own child track.
Open the file at https://ui.perfetto.dev (Open trace file), or with trace_processor.
"""

from __future__ import annotations

from typing import IO, Any

from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import (
    CounterDescriptor,
    TracePacket,
    TrackDescriptor,
    TrackEvent,
)
from perfetto.trace_builder.proto_builder import TraceProtoBuilder

SEQ = 1
CHUNK = 4096
SLICE_BEGIN = TrackEvent.TYPE_SLICE_BEGIN
SLICE_END = TrackEvent.TYPE_SLICE_END
INSTANT = TrackEvent.TYPE_INSTANT
COUNTER = TrackEvent.TYPE_COUNTER
_CLEARED = TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
_NEEDS = TracePacket.SEQ_NEEDS_INCREMENTAL_STATE

Arg = int | float | str


class PerfettoWriter:
    """Packets to one open binary file; `flush` writes what is built."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self._builder = TraceProtoBuilder()
        self._add = self._builder.trace.packet.add
        self._left = CHUNK            # packets to build before the next write
        self._flushed = 0
        self._names: dict[str, int] = {}
        # serialized packets without their timestamp, merged into each new one
        self._tmpl: dict[tuple[int, str], bytes] = {}
        self._end_tmpl: dict[tuple[int, str], bytes] = {}
        self._counter_tmpl: dict[tuple[int, int], bytes] = {}
        self._next_uuid = 0
        # the first packet of the sequence clears its incremental state (the interned names)
        self._add(trusted_packet_sequence_id=SEQ, sequence_flags=_CLEARED | _NEEDS)
        self._counted()

    @property
    def packets(self) -> int:
        """Packets written so far, and built to be written."""
        return self._flushed + CHUNK - self._left

    def _counted(self) -> None:
        self._left -= 1
        if not self._left:
            self.flush()

    def flush(self) -> None:
        n = CHUNK - self._left
        if n:
            self.file.write(self._builder.serialize())
            self._builder = TraceProtoBuilder()    # (a cleared Trace detaches its list)
            self._add = self._builder.trace.packet.add
            self._flushed += n
            self._left = CHUNK

    def _iid(self, name: str, p: TracePacket) -> int:
        """The interned id of an event name (declared in packet `p` the first time)."""
        iid = self._names.get(name)
        if iid is None:
            iid = self._names[name] = len(self._names) + 1
            p.interned_data.event_names.add(iid=iid, name=name)
        return iid

    # ---- tracks -------------------------------------------------------------------------
    def _declare(self, desc: TrackDescriptor) -> int:
        self._add(trusted_packet_sequence_id=SEQ, track_descriptor=desc)
        self._counted()
        return desc.uuid

    def _uuid(self) -> int:
        self._next_uuid += 1
        return self._next_uuid

    def track(self, name: str, parent: int = 0, order: int = 0) -> int:
        """A track for slices, under `parent` if given; `order` ranks it among siblings."""
        d = TrackDescriptor(uuid=self._uuid(), name=name)
        if parent:
            d.parent_uuid = parent
        if order:
            d.sibling_order_rank = order
        return self._declare(d)

    def counter_track(self, name: str, parent: int = 0, unit: str = "") -> int:
        d = TrackDescriptor(uuid=self._uuid(), name=name, counter=CounterDescriptor())
        if unit:
            d.counter.unit_name = unit
        if parent:
            d.parent_uuid = parent
        return self._declare(d)

    def process_track(self, pid: int, name: str) -> int:
        d = TrackDescriptor(uuid=self._uuid())
        d.process.pid = pid
        d.process.process_name = name
        return self._declare(d)

    # ---- events -------------------------------------------------------------------------
    def _named(self, kind: Any, track: int, t: int, name: str,
               args: dict[str, Arg] | None, flows: tuple[int, ...],
               ends_flows: tuple[int, ...]) -> None:
        iid = self._names.get(name)
        p = self._add(timestamp=t, trusted_packet_sequence_id=SEQ, sequence_flags=_NEEDS,
                      track_event={"type": kind, "track_uuid": track})
        te = p.track_event
        te.name_iid = iid if iid is not None else self._iid(name, p)
        if args:
            self._args(te, args)
        if flows:
            te.flow_ids.extend(flows)
        if ends_flows:
            te.terminating_flow_ids.extend(ends_flows)
        self._counted()

    @staticmethod
    def _args(te: TrackEvent, args: dict[str, Arg]) -> None:
        for k, v in args.items():
            a = te.debug_annotations.add(name=k)
            if isinstance(v, int):
                a.int_value = v
            elif isinstance(v, float):
                a.double_value = v
            else:
                a.string_value = v

    def begin(self, track: int, t: int, name: str, args: dict[str, Arg] | None = None,
              flows: tuple[int, ...] = (), ends_flows: tuple[int, ...] = ()) -> None:
        self._named(SLICE_BEGIN, track, t, name, args, flows, ends_flows)

    def intern(self, name: str) -> int:
        """The interned id of an event name; the first time, a packet declares it."""
        iid = self._names.get(name)
        if iid is None:
            p = self._add(trusted_packet_sequence_id=SEQ, sequence_flags=_NEEDS)
            iid = self._iid(name, p)
            self._counted()
        return iid

    def template(self, kind: Any, track: int, name: str,
                 args: dict[str, Arg] | None = None) -> bytes:
        """A serialized packet without its timestamp, for `emit`: the frequent events (lock
        holds, handlers, spl levels) are the same but for their time, so each is built
        once and merged into a packet that holds only the timestamp."""
        p = TracePacket(trusted_packet_sequence_id=SEQ, sequence_flags=_NEEDS,
                        track_event={"type": kind, "track_uuid": track,
                                     "name_iid": self.intern(name)})
        if args:
            self._args(p.track_event, args)
        return p.SerializeToString()

    def emit(self, t: int, tmpl: bytes) -> None:
        self._add(timestamp=t).MergeFromString(tmpl)
        self._left -= 1
        if not self._left:
            self.flush()

    def begin_plain(self, track: int, t: int, name: str) -> None:
        """A slice begin with only a name, from a cached template."""
        tmpl = self._tmpl.get((track, name))
        if tmpl is None:
            tmpl = self._tmpl[(track, name)] = self.template(SLICE_BEGIN, track, name)
        self.emit(t, tmpl)

    def end(self, track: int, t: int, name: str) -> None:
        """The end of the innermost open slice on `track`, which is named `name` (the name
        is Perfetto's to ignore; it lets a reader check that slices nest)."""
        tmpl = self._end_tmpl.get((track, name))
        if tmpl is None:
            tmpl = self._end_tmpl[(track, name)] = self.template(SLICE_END, track, name)
        self.emit(t, tmpl)

    def instant(self, track: int, t: int, name: str, args: dict[str, Arg] | None = None,
                flows: tuple[int, ...] = (), ends_flows: tuple[int, ...] = ()) -> None:
        self._named(INSTANT, track, t, name, args, flows, ends_flows)

    def counter(self, track: int, t: int, value: int | float) -> None:
        if type(value) is int:
            self.counter_int(track, t, value)
            return
        self._add(timestamp=t, trusted_packet_sequence_id=SEQ,
                  track_event={"type": COUNTER, "track_uuid": track,
                               "double_counter_value": float(value)})
        self._counted()

    def counter_template(self, track: int, value: int) -> bytes:
        """The serialized packet of an integer counter's value on `track`, for emit."""
        return TracePacket(trusted_packet_sequence_id=SEQ,
                           track_event={"type": COUNTER, "track_uuid": track,
                                        "counter_value": value}).SerializeToString()

    def counter_int(self, track: int, t: int, value: int) -> None:
        """An integer counter: the levels and depths counted are few, so a cached packet
        per (track, value)."""
        tmpl = self._counter_tmpl.get((track, value))
        if tmpl is None:
            tmpl = self._counter_tmpl[(track, value)] = self.counter_template(track, value)
        self._add(timestamp=t).MergeFromString(tmpl)
        self._left -= 1
        if not self._left:
            self.flush()


class Lanes:
    """Child tracks of one track, so that overlapping slices each get one that is free: a
    slice takes the first lane free at its start (lane 0 is the track itself)."""

    def __init__(self, w: PerfettoWriter, track: int, name: str) -> None:
        self.w = w
        self.name = name
        self.tracks = [track]
        self.free_at = [0]          # when each lane's last slice ended (-1: one is open)

    def take(self, t: int) -> int:
        """A lane free at `t`, marked open; returns its index."""
        free_at = self.free_at
        if 0 <= free_at[0] <= t:
            free_at[0] = -1
            return 0
        for i, f in enumerate(free_at):
            if 0 <= f <= t:
                self.free_at[i] = -1
                return i
        self.tracks.append(self.w.track(f"{self.name} #{len(self.tracks) + 1}",
                                        parent=self.tracks[0], order=len(self.tracks)))
        self.free_at.append(-1)
        return len(self.tracks) - 1

    def give(self, lane: int, t: int) -> None:
        self.free_at[lane] = t


__all__ = ["Lanes", "PerfettoWriter"]
