"""Disk images after a power cut, and image files.

`Cutter` turns a disk's `WriteLog` into the image a power cut at any instant would leave:
the writes completed by then, each write then in service torn at a seeded sector boundary (if
the disk tears), queued writes lost. Instants must be asked in increasing order.

An image file is a sparse raw disk image (block n at byte n * 4096), so `dd`, `hexdump` and
`cmp` work on it. Metadata blocks are their bytes; a file-data block, which vfslab keeps as a
version stamp, is written as eight 512-byte sectors each holding b"VFSLABDATA", the stamp and
the sector number, so a torn data block is representable sector by sector and reads back as
the same `Torn`.
"""

from __future__ import annotations

import os
import random
import struct
from bisect import bisect_left
from pathlib import Path
from typing import Any

from vfslab.dev.wd import BLOCK_SECTORS, SECTOR, Torn, WriteLog, tear_write
from vfslab.errors import InputError

BSIZE = 4096
DATA_MAGIC = b"VFSLABDATA"
_SECT = struct.Struct("<10sQH")
IMAGE_MAGIC = b"VFSLABIMG1"


class Cutter:
    """Images at increasing instants from one write log."""

    def __init__(self, log: WriteLog) -> None:
        self.image: dict[int, Any] = dict(log.initial)
        self.starts = sorted(log.starts, key=lambda s: (s[0], s[1]))
        self.ends = sorted(log.ends, key=lambda e: (e[0], e[1]))
        # block -> the times writes of it were queued to the driver, in order
        self.queued: dict[int, list[int]] = {}
        for t, first, n in log.queued:
            for b in range(first, first + n):
                self.queued.setdefault(b, []).append(t)
        # block -> (time, request number) of the writes of it entering service, in order;
        # request number -> (time, succeeded) of its completion
        self.served: dict[int, list[tuple[int, int]]] = {}
        for t, reqno, first, data in self.starts:
            for b in range(first, first + len(data)):
                self.served.setdefault(b, []).append((t, reqno))
        self.ended: dict[int, tuple[int, bool]] = {r: (t, ok) for t, r, ok in self.ends}
        # request number -> (first block, contents) of each write
        self.writes: dict[int, tuple[int, tuple[Any, ...]]] = {
            reqno: (first, data) for _t, reqno, first, data in self.starts}
        self.inflight: dict[int, tuple[int, tuple[Any, ...]]] = {}
        self.i_start = 0
        self.i_end = 0
        self.now = -1

    def fate(self, blk: int, queued_at: int, t: int) -> str:
        """What became, by instant `t`, of the write of `blk` queued at `queued_at`: "queued"
        (still waiting or in service), "failed" or "written" (the first write of the block to
        enter service after it was queued is taken as that write)."""
        sv = self.served.get(blk, [])
        i = bisect_left(sv, (queued_at, -1))
        if i == len(sv) or sv[i][0] > t:
            return "queued"
        end = self.ended.get(sv[i][1])
        if end is None or end[0] > t:
            return "queued"
        return "written" if end[1] else "failed"

    def failed_between(self, blk: int, t0: int, t1: int) -> bool:
        """Whether a write of `blk` that entered service at or after `t0` failed by `t1`."""
        sv = self.served.get(blk, [])
        for ts, reqno in sv[bisect_left(sv, (t0, -1)):]:
            if ts > t1:
                break
            end = self.ended.get(reqno)
            if end is not None and end[0] <= t1 and not end[1]:
                return True
        return False

    def written_as_data(self, blk: int, t0: int, t1: int) -> bool:
        """Whether a write of `blk` that entered service in [t0, t1] carried file data (a
        version stamp): an indirect block so written had been given out again as data."""
        sv = self.served.get(blk, [])
        for ts, reqno in sv[bisect_left(sv, (t0, -1)):]:
            if ts > t1:
                break
            first, data = self.writes[reqno]
            v = data[blk - first]
            if isinstance(v, int) and v != 0:
                return True
        return False

    def last_write_failed(self, blk: int, t: int) -> bool:
        """Whether the last write of `blk` completed by `t` failed: the disk then holds what
        the block held before it, whatever the failed write carried (2.0's brelse throws
        such a buffer away, and with it what was copied into it)."""
        last: tuple[int, bool] | None = None
        for _ts, reqno in self.served.get(blk, []):
            end = self.ended.get(reqno)
            if end is not None and end[0] <= t and (last is None or end[0] >= last[0]):
                last = end
        return last is not None and not last[1]

    def advance(self, t: int) -> None:
        if t < self.now:
            raise ValueError("crash instants must increase")
        self.now = t
        starts, ends = self.starts, self.ends
        while True:
            ts = starts[self.i_start][0] if self.i_start < len(starts) else None
            te = ends[self.i_end][0] if self.i_end < len(ends) else None
            if ts is not None and ts <= t and (te is None or ts <= te):
                _, reqno, blk, data = starts[self.i_start]
                self.inflight[reqno] = (blk, data)
                self.i_start += 1
            elif te is not None and te <= t:
                _, reqno, ok = ends[self.i_end]
                self.i_end += 1
                w = self.inflight.pop(reqno, None)      # None: a read
                if w is not None and ok:
                    blk, data = w
                    img = self.image
                    for i, v in enumerate(data):
                        img[blk + i] = v
            else:
                return

    def cut(self, t: int, tear: bool, rng: random.Random) -> dict[int, Any]:
        """The image a power cut at `t` leaves."""
        self.advance(t)
        image = dict(self.image)
        if tear:
            for _reqno, (blk, data) in sorted(self.inflight.items()):
                tear_write(image, blk, data, rng.randrange(len(data) * BLOCK_SECTORS + 1))
        return image

    def in_service(self) -> int:
        return len(self.inflight)


# ---- image files -------------------------------------------------------------------------------
def _data_sector(stamp: Any, i: int) -> bytes:
    if stamp is None:
        return bytes(SECTOR)
    return _SECT.pack(DATA_MAGIC, int(stamp), i).ljust(SECTOR, b"\0")


def encode_block(v: Any) -> bytes:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).ljust(BSIZE, b"\0")[:BSIZE]
    if isinstance(v, Torn):
        out = []
        for i in range(BLOCK_SECTORS):
            src = v.new if i < v.sectors else v.old
            if isinstance(src, (bytes, bytearray)):
                out.append(bytes(src).ljust(BSIZE, b"\0")[i * SECTOR:(i + 1) * SECTOR])
            else:
                out.append(_data_sector(src, i))
        return b"".join(out)
    return b"".join(_data_sector(v, i) for i in range(BLOCK_SECTORS))


def decode_block(raw: bytes) -> Any:
    if raw.count(0) == len(raw):
        return None
    stamps: list[int | None] = []
    for i in range(BLOCK_SECTORS):
        sec = raw[i * SECTOR:(i + 1) * SECTOR]
        if sec[:10] == DATA_MAGIC:
            stamps.append(_SECT.unpack_from(sec)[1])
        elif sec.count(0) == SECTOR:
            stamps.append(None)
        else:
            return raw                       # metadata (or anything else): its bytes
    first = stamps[0]
    if all(s == first for s in stamps):
        return first
    k = next(i for i, s in enumerate(stamps) if s != first)
    rest = stamps[k]
    if all(s == rest for s in stamps[k:]) and all(s == first for s in stamps[:k]):
        return Torn(rest, first, k)
    return raw


def save_image(image: dict[int, Any], nblocks: int, path: str | Path) -> None:
    """Write a sparse raw image; a trailer names it (magic and block count) for `load_image`.
    Written beside it and renamed over it: an image is replaced whole or not at all."""
    p = Path(path)
    tmp = p.with_name(p.name + ".vfslab-tmp")
    try:
        with tmp.open("wb") as f:
            for blk in sorted(image):
                v = image[blk]
                if v is None or not 0 <= blk < nblocks:
                    continue
                f.seek(blk * BSIZE)
                f.write(encode_block(v))
            f.seek(nblocks * BSIZE)
            f.write(IMAGE_MAGIC + struct.pack("<Q", nblocks))
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_image(path: str | Path) -> tuple[dict[int, Any], int]:
    """(store, nblocks) of an image written by `save_image`; holes are skipped with
    SEEK_DATA where the file system supports it."""
    p = Path(path)
    try:
        size = p.stat().st_size
        f = p.open("rb")
    except OSError as e:
        raise InputError(f"cannot read image: {e.strerror}", str(path)) from None
    with f:
        tail = len(IMAGE_MAGIC) + 8
        if size < tail or (size - tail) % BSIZE:
            raise InputError("not a vfslab image (expected 4 KiB blocks and a vfslab trailer; "
                             "write one with `vfslab run --crash-at T --image FILE`)", str(path))
        f.seek(size - tail)
        trailer = f.read(tail)
        if trailer[:len(IMAGE_MAGIC)] != IMAGE_MAGIC:
            raise InputError("not a vfslab image (no vfslab trailer at the end)", str(path))
        nblocks = struct.unpack("<Q", trailer[len(IMAGE_MAGIC):])[0]
        if nblocks * BSIZE != size - tail:
            raise InputError(f"image trailer says {nblocks} blocks, file holds "
                             f"{(size - tail) // BSIZE}", str(path))
        store: dict[int, Any] = {}
        end = nblocks * BSIZE
        fd = f.fileno()
        pos = 0
        while pos < end:
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
                hole = min(end, os.lseek(fd, pos, os.SEEK_HOLE))
            except (OSError, AttributeError):
                hole = end
            if pos >= end:
                break
            pos -= pos % BSIZE
            f.seek(pos)
            while pos < hole:
                raw = f.read(BSIZE)
                v = decode_block(raw)
                if v is not None:
                    store[pos // BSIZE] = v
                pos += BSIZE
    return store, nblocks
