"""The trace writer's own framing (trace/perfetto.py frames packets in one vectorized pass)
gives the very bytes the protobuf library serializes, across chunks and at every varint
length."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace, TracePacket

from vfslab.trace import perfetto
from vfslab.trace.perfetto import NO_TIME, SLICE_BEGIN, SLICE_END, PerfettoWriter, frame_packets

# timestamps at every varint length's edges, and none
EDGES = [NO_TIME, 0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**35, 2**42 + 5,
         2**56, 2**63 - 1]


def _body(i: int, size: int) -> bytes:
    """A real packet without its timestamp, `size` bytes of name or so."""
    p = TracePacket(trusted_packet_sequence_id=1, track_event={"type": SLICE_BEGIN,
                                                              "track_uuid": i + 1})
    p.track_event.debug_annotations.add(name="x", string_value="y" * size)
    return p.SerializeToString()


def _expected(times: list[int], bodies: list[bytes]) -> bytes:
    tr = Trace()
    for t, b in zip(times, bodies, strict=True):
        p = tr.packet.add()
        if t != NO_TIME:
            p.timestamp = t
        p.MergeFromString(b)
    return tr.SerializeToString()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.sampled_from(EDGES),
                                    st.integers(0, 2**63 - 1)),
                          st.sampled_from([0, 3, 100, 126, 127, 200, 20000])),
                min_size=1, max_size=40))
def test_framed_packets_are_the_bytes_protobuf_serializes(
        packets: list[tuple[int, int]]) -> None:
    times = [t for t, _ in packets]
    bodies = [_body(i, size) for i, (_, size) in enumerate(packets)]
    lens = np.array([len(b) for b in bodies], np.int64)
    offs = np.cumsum(lens) - lens
    pool = np.frombuffer(b"".join(bodies), np.uint8)
    got = frame_packets(np.array(times, np.int64), pool, offs, lens)
    assert got == _expected(times, bodies)


def test_a_writer_across_many_chunks_keeps_every_packet_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(perfetto, "CHUNK", 64)
    f = io.BytesIO()
    w = PerfettoWriter(f)
    track = w.track("t")
    begin = w.template(SLICE_BEGIN, track, "hold")
    end = w.template(SLICE_END, track, "hold")
    sent: list[tuple[int, str]] = []
    for i in range(1000):
        t = 1_000 * i
        if i % 7 == 0:          # a one-off packet between templates, with its own name
            w.begin(track, t, f"call {i}", {"n": i})
            sent.append((t, f"call {i}"))
        elif i % 2:
            w.emit(t, begin)
            sent.append((t, "hold"))
        else:
            w.with_flows(t, end, ends_flows=(i,))
            sent.append((t, "hold"))
    w.flush()
    assert w.packets == len(Trace.FromString(f.getvalue()).packet)
    names: dict[int, str] = {}
    seen: list[tuple[int, str]] = []
    for p in Trace.FromString(f.getvalue()).packet:
        for en in p.interned_data.event_names:
            names[en.iid] = en.name
        if p.HasField("track_event"):
            seen.append((p.timestamp, names[p.track_event.name_iid]))
    assert seen == sent
