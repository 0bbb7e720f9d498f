"""Service-time models: how long a request keeps the device busy.

HDD: a 7200 rpm ATA disk of 2004, after Seagate's Barracuda 7200.7 data sheet (ST3160023A,
2003): track-to-track seek 0.8 ms, average seek 8.5 ms, full-stroke seek 17 ms (the last is our
assumption: the sheet gives "< 17"), 8.33 ms per revolution, sustained media rate falling from
58 MB/s on the outer zone to 30 MB/s on the inner zone (assumed linear in cylinder), 4 heads.
The seek curve has the form of Ruemmler and Wilkes, "An Introduction to Disk Drive Modeling"
(IEEE Computer 27(3), 1994): a + b*sqrt(d) for short seeks and c + e*d for long ones, fitted
through the three data-sheet points (1 cylinder, a third of the stroke = the average random
seek, the full stroke), continuous at a third of the stroke. Rotational latency follows the
platter's angle at the moment the seek ends (angle = time mod revolution). A request that
starts where the previous one ended pays neither seek nor rotation: the drive's track buffer
streams it (the drive's write cache is not modelled).

SSD: a fixed latency per operation (read 80 us, write 30 us), a transfer at the bandwidth of one
of N internal channels (total bandwidth / N), requests spread over the channels.
"""

from __future__ import annotations

import math
from typing import Protocol

NS_PER_MS = 1_000_000
SECTOR = 512


class ServiceModel(Protocol):
    def service_ns(self, read: bool, blkno: int, nbytes: int, now: int) -> int: ...

    def complete(self, blkno: int, nbytes: int, now: int) -> None: ...


class HDD:
    """A zoned, seek-curve, rotating disk (see the module docstring for the sources)."""

    def __init__(self, capacity_bytes: int = 80 * 10**9, rpm: int = 7200, heads: int = 4,
                 t2t_ms: float = 0.8, avg_ms: float = 8.5, full_ms: float = 17.0,
                 outer_mbps: float = 58.0, inner_mbps: float = 30.0,
                 overhead_us: float = 100.0) -> None:
        self.rev_ns = int(60e9 / rpm)
        self.heads = heads
        self.outer_Bps = outer_mbps * 1e6
        self.inner_Bps = inner_mbps * 1e6
        avg_rate = (self.outer_Bps + self.inner_Bps) / 2
        self.avg_spt = avg_rate * self.rev_ns / 1e9 / SECTOR   # sectors per track
        self.cylinders = max(3, int(capacity_bytes / SECTOR / (heads * self.avg_spt)))
        n = self.cylinders
        third = n / 3
        self.b = (avg_ms - t2t_ms) / (math.sqrt(third) - 1)
        self.a = t2t_ms - self.b
        self.e = (full_ms - avg_ms) / (n - third)
        self.c = avg_ms - self.e * third
        self.third = third
        self.overhead_ns = int(overhead_us * 1000)
        self.cyl = 0
        self.next_sector = -1

    def seek_ms(self, d: int) -> float:
        if d <= 0:
            return 0.0
        if d <= self.third:
            return self.a + self.b * math.sqrt(d)
        return self.c + self.e * d

    def rate_Bps(self, cyl: int) -> float:
        frac = cyl / self.cylinders
        return self.outer_Bps + (self.inner_Bps - self.outer_Bps) * frac

    def locate(self, sector: int) -> tuple[int, float]:
        """(cylinder, angle in [0, 1)) of a sector, with the average track size."""
        per_cyl = self.heads * self.avg_spt
        cyl = min(self.cylinders - 1, int(sector / per_cyl))
        angle = (sector % self.avg_spt) / self.avg_spt
        return cyl, angle

    def service_ns(self, read: bool, blkno: int, nbytes: int, now: int) -> int:
        cyl, angle = self.locate(blkno)
        xfer = int(nbytes / self.rate_Bps(cyl) * 1e9)
        if blkno == self.next_sector:
            t = self.overhead_ns + xfer
        else:
            seek = int(self.seek_ms(abs(cyl - self.cyl)) * NS_PER_MS)
            arrive = now + self.overhead_ns + seek
            here = (arrive % self.rev_ns) / self.rev_ns
            wait = int(((angle - here) % 1.0) * self.rev_ns)
            t = self.overhead_ns + seek + wait + xfer
        self.cyl = cyl
        self.next_sector = blkno + nbytes // SECTOR
        return t

    def complete(self, blkno: int, nbytes: int, now: int) -> None:
        pass


class SSD:
    """Latency per operation plus transfer on one of `channels` internal channels."""

    def __init__(self, read_us: float = 80.0, write_us: float = 30.0, mbps: float = 500.0,
                 channels: int = 8) -> None:
        self.read_ns = int(read_us * 1000)
        self.write_ns = int(write_us * 1000)
        self.chan_Bps = mbps * 1e6 / channels
        self.free_at = [0] * channels

    def service_ns(self, read: bool, blkno: int, nbytes: int, now: int) -> int:
        i = min(range(len(self.free_at)), key=self.free_at.__getitem__)
        start = max(now, self.free_at[i])
        end = start + (self.read_ns if read else self.write_ns) + int(nbytes / self.chan_Bps * 1e9)
        self.free_at[i] = end
        return end - now

    def complete(self, blkno: int, nbytes: int, now: int) -> None:
        pass
