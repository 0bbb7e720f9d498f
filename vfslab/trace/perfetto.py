"""A Perfetto trace written as the run goes: tracks, slices, instants, counters and flows as
TracePackets (the perfetto package's protobuf classes), written out every `CHUNK` packets,
so memory stays flat however long the run.

Every packet's content is built with the protobuf classes, once: a packet without its
timestamp is a *body*, and the frequent events (lock holds, handlers, spl levels, slice ends)
are the same body at another time, so each is serialized once (`template`) and an event is
then its timestamp and its body's number, appended to two lists. A chunk is framed as a
`Trace` in one vectorized pass (`frame_packets`): per packet the Trace's field-1 tag, the
packet's length, the timestamp field (TracePacket field 8, varint) and the body's bytes, in
protobuf's wire format (serialized messages concatenate: the body's fields follow the
timestamp in field-number order, so the bytes are those `TracePacket.SerializeToString`
gives; a test compares them). Why not the package's builders: TraceProtoBuilder costs a
message object and a merge per packet (1.5 us here), and StreamingTraceProtoBuilder copies
each packet into a Trace of its own (twice that); at the hundred thousand lock holds of a
20-second run, `vfslab bench trace` measured either over its 2x aim.

One packet sequence; event names are interned (the first packet naming one carries it);
timestamps are the emulated clock in ns. Tracks are declared on first use. Slices on one
track must nest, so where holds or calls overlap without nesting (two holders of one lock
class, two threads of one process in system calls) `Lanes` gives each its own child track.
Open the file at https://ui.perfetto.dev (Open trace file), or with trace_processor.
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np
from numpy.typing import NDArray
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import (
    CounterDescriptor,
    TracePacket,
    TrackDescriptor,
    TrackEvent,
)

SEQ = 1
CHUNK = 4096
SLICE_BEGIN = TrackEvent.TYPE_SLICE_BEGIN
SLICE_END = TrackEvent.TYPE_SLICE_END
INSTANT = TrackEvent.TYPE_INSTANT
COUNTER = TrackEvent.TYPE_COUNTER
_CLEARED = TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
_NEEDS = TracePacket.SEQ_NEEDS_INCREMENTAL_STATE
NO_TIME = -1                     # a packet without a timestamp (descriptors, interning)
_TRACE_PACKET_TAG = 0x0A         # Trace.packet: field 1, length-delimited
_TIMESTAMP_TAG = 0x40            # TracePacket.timestamp: field 8, varint

Arg = int | float | str
_parse = TracePacket.FromString
I64 = NDArray[np.int64]


def _varint_len(v: NDArray[np.uint64]) -> I64:
    n = np.ones(len(v), np.int64)
    for g in range(1, 10):
        n += (v >> np.uint64(7 * g)) > 0
    return n


def _put_varint(out: NDArray[np.uint8], pos: I64, v: NDArray[np.uint64], n: I64) -> None:
    """Write each v[i] as a varint of n[i] bytes at out[pos[i]:]."""
    for g in range(int(n.max(initial=0))):
        m = n > g
        byte = (v[m] >> np.uint64(7 * g)) & np.uint64(0x7F)
        byte |= np.where(n[m] > g + 1, np.uint64(0x80), np.uint64(0))
        out[pos[m] + g] = byte.astype(np.uint8)


_HDR = 16            # room for a packet's framing: tag, length (<= 3), tag, timestamp (<= 10)


def frame_packets(times: I64, pool: NDArray[np.uint8], offs: I64, lens: I64) -> bytes:
    """The serialized `Trace` of packets i = 0..: each the timestamp times[i] (none where
    NO_TIME) followed by its body pool[offs[i]:offs[i] + lens[i]], a serialized TracePacket
    without one. Each packet's framing is built in a row of its own, then framing and
    bodies are gathered in order in one pass."""
    n = len(times)
    if not n:
        return b""
    timed = times >= 0
    t = np.where(timed, times, 0).astype(np.uint64)
    tlen = _varint_len(t)
    tfield = np.where(timed, 1 + tlen, 0)
    plen = tfield + lens
    if int(plen.max()) >= 1 << 21:
        raise ValueError("a trace packet of 2 MiB or more")
    llen = _varint_len(plen.astype(np.uint64))
    hdr = np.zeros(n * _HDR, np.uint8)
    row = np.arange(n, dtype=np.int64) * _HDR
    hdr[row] = _TRACE_PACKET_TAG
    _put_varint(hdr, row + 1, plen.astype(np.uint64), llen)
    tpos = row + 1 + llen
    hdr[tpos[timed]] = _TIMESTAMP_TAG
    _put_varint(hdr, tpos[timed] + 1, t[timed], tlen[timed])
    # segments in output order: framing 0, body 0, framing 1, body 1, ...
    src = np.concatenate((hdr, pool))
    seg_start = np.empty(2 * n, np.int64)
    seg_start[0::2] = row
    seg_start[1::2] = n * _HDR + offs
    seg_len = np.empty(2 * n, np.int64)
    seg_len[0::2] = 1 + llen + tfield
    seg_len[1::2] = lens
    ends = np.cumsum(seg_len)
    idx = np.repeat(seg_start - (ends - seg_len), seg_len) + np.arange(int(ends[-1]))
    return src[idx].tobytes()


def _add_flows(te: TrackEvent, flows: tuple[int, ...], ends_flows: tuple[int, ...]) -> None:
    if flows:
        te.flow_ids.extend(flows)
    if ends_flows:
        te.terminating_flow_ids.extend(ends_flows)


class PerfettoWriter:
    """Packets to one open binary file; `flush` writes what is pending."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        # the pending packets: timestamps and body numbers (a template's, >= 0, or a
        # one-off body's in this chunk, -1 - its index in `_once`)
        self._times: list[int] = []
        self._ids: list[int] = []
        self._templates: list[bytes] = []
        self._tlens: list[int] = []   # their lengths, and all of them joined, as of the
        self._tpool = b""             # last flush
        self._once: list[bytes] = []
        self._left = CHUNK            # packets to take before the next write
        self._flushed = 0
        self._names: dict[str, int] = {}
        self._tmpl: dict[tuple[int, str], int] = {}
        self._end_tmpl: dict[tuple[int, str], int] = {}
        self._counter_tmpl: dict[tuple[int, int], int] = {}
        self._next_uuid = 0
        # the first packet of the sequence clears its incremental state (the interned names)
        self._packet(NO_TIME, TracePacket(trusted_packet_sequence_id=SEQ,
                                          sequence_flags=_CLEARED | _NEEDS))

    @property
    def packets(self) -> int:
        """Packets written so far, and taken to be written."""
        return self._flushed + CHUNK - self._left

    def _packet(self, t: int, p: TracePacket) -> None:
        """A one-off packet at `t` (its timestamp is the writer's to add)."""
        self._once.append(p.SerializeToString())
        self._times.append(t)
        self._ids.append(-len(self._once))
        self._left -= 1
        if not self._left:
            self.flush()

    def flush(self) -> None:
        n = CHUNK - self._left
        if not n:
            return
        if len(self._tlens) < len(self._templates):       # templates made since the last
            self._tlens.extend(len(b) for b in self._templates[len(self._tlens):])
            self._tpool = b"".join(self._templates)
        ids = np.array(self._ids, np.int64)
        once = ids < 0
        tl = np.array(self._tlens, np.int64)
        offs = np.empty(n, np.int64)
        lens = np.empty(n, np.int64)
        lens[~once] = tl[ids[~once]]
        offs[~once] = (np.cumsum(tl) - tl)[ids[~once]]
        ol = np.fromiter((len(b) for b in self._once), np.int64, len(self._once))
        oi = -1 - ids[once]
        lens[once] = ol[oi]
        offs[once] = len(self._tpool) + (np.cumsum(ol) - ol)[oi]
        pool = np.frombuffer(self._tpool + b"".join(self._once), np.uint8)
        self.file.write(frame_packets(np.array(self._times, np.int64), pool, offs, lens))
        self._times.clear()
        self._ids.clear()
        self._once.clear()
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
        self._packet(NO_TIME, TracePacket(trusted_packet_sequence_id=SEQ,
                                          track_descriptor=desc))
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
        # (fields set one by one: a third cheaper than the constructor's dict here)
        p = TracePacket()
        p.trusted_packet_sequence_id = SEQ
        p.sequence_flags = _NEEDS
        te = p.track_event
        te.type = kind
        te.track_uuid = track
        iid = self._names.get(name)
        te.name_iid = iid if iid is not None else self._iid(name, p)
        if args:
            self._args(te, args)
        _add_flows(te, flows, ends_flows)
        self._packet(t, p)

    @staticmethod
    def _args(te: TrackEvent, args: dict[str, Arg]) -> None:
        add = te.debug_annotations.add
        for k, v in args.items():
            tv = type(v)
            if tv is int:
                add(name=k, int_value=v)
            elif tv is str:
                add(name=k, string_value=v)
            elif tv is float:
                add(name=k, double_value=v)
            elif isinstance(v, int):       # bool, IntEnum
                add(name=k, int_value=int(v))
            else:
                add(name=k, string_value=str(v))

    def begin(self, track: int, t: int, name: str, args: dict[str, Arg] | None = None,
              flows: tuple[int, ...] = (), ends_flows: tuple[int, ...] = ()) -> None:
        self._named(SLICE_BEGIN, track, t, name, args, flows, ends_flows)

    def intern(self, name: str) -> int:
        """The interned id of an event name; the first time, a packet declares it."""
        iid = self._names.get(name)
        if iid is None:
            p = TracePacket(trusted_packet_sequence_id=SEQ, sequence_flags=_NEEDS)
            iid = self._iid(name, p)
            self._packet(NO_TIME, p)
        return iid

    def _template(self, p: TracePacket) -> int:
        self._templates.append(p.SerializeToString())
        return len(self._templates) - 1

    def template(self, kind: Any, track: int, name: str,
                 args: dict[str, Arg] | None = None) -> int:
        """A packet's body, for `emit` at any time: the frequent events (lock holds,
        handlers, spl levels) are the same but for their time, so each is built once."""
        p = TracePacket(trusted_packet_sequence_id=SEQ, sequence_flags=_NEEDS,
                        track_event={"type": kind, "track_uuid": track,
                                     "name_iid": self.intern(name)})
        if args:
            self._args(p.track_event, args)
        return self._template(p)

    def emit(self, t: int, tmpl: int) -> None:
        """The template `tmpl` at `t` (callers in the hot path inline these four lines)."""
        self._times.append(t)
        self._ids.append(tmpl)
        self._left -= 1
        if not self._left:
            self.flush()

    def with_flows(self, t: int, tmpl: int, flows: tuple[int, ...] = (),
                   ends_flows: tuple[int, ...] = ()) -> None:
        """The template `tmpl` at `t` with flows begun or ended (a thread's step after its
        wakeup, the wakeup itself): the template's packet parsed back and the flow ids
        added, cheaper than building the packet anew."""
        if not flows and not ends_flows:
            self.emit(t, tmpl)
            return
        p = _parse(self._templates[tmpl])
        te = p.track_event
        _add_flows(te, flows, ends_flows)
        self._packet(t, p)

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
        self._packet(t, TracePacket(trusted_packet_sequence_id=SEQ,
                                    track_event={"type": COUNTER, "track_uuid": track,
                                                 "double_counter_value": float(value)}))

    def counter_template(self, track: int, value: int) -> int:
        """The template of an integer counter's value on `track`, for emit."""
        return self._template(TracePacket(trusted_packet_sequence_id=SEQ,
                                          track_event={"type": COUNTER, "track_uuid": track,
                                                       "counter_value": value}))

    def counter_int(self, track: int, t: int, value: int) -> None:
        """An integer counter: the levels and depths counted are few, so a template per
        (track, value)."""
        tmpl = self._counter_tmpl.get((track, value))
        if tmpl is None:
            tmpl = self._counter_tmpl[(track, value)] = self.counter_template(track, value)
        self.emit(t, tmpl)


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
