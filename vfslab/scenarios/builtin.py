"""Built-in scenarios, written as workload bodies against the system-call interface.

A body is `body(sys, rng)`: a generator that makes calls with `yield from sys.write(...)`.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

from vfslab.kern.fcntl import O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY
from vfslab.scenario import ProcessSpec, Scenario, SetupItem
from vfslab.scenarios.patterns import writer

KiB = 1024
MiB = 1024 * 1024
MS = 1_000_000
S = 1_000_000_000
GEN = Generator[Any, Any, None]


# A writer of `chunk`-sized sequential writes at a rate (0: flat out), rewriting from the start
# after `total` bytes: the library's "writer" pattern.
paced_writer = writer


def protocol() -> Scenario:
    """Drive every path the mail names, on a small machine so that it happens quickly:
    delayed and asynchronous metadata writes (syncer and fsync passes release them in
    biodone), write errors on metadata and data (brelse -> reassignbuf/brelvp -> holdrele
    from biodone), vnode recycling (more files than vnodes), fsync waits on v_numoutput."""

    def churn(sys: Any, rng: random.Random) -> GEN:
        # the metadata faults below fail mkdir's synchronous writes half the time: retry, as
        # a program would (a first EIO left every later call ENOENT: found by its own test)
        while (yield from sys.mkdir("/p", 0o755)) not in (0, -17):
            yield from sys.nanosleep(MS)
        i = 0
        while True:
            path = f"/p/f{i % 200}"
            fd = yield from sys.open(path, O_RDWR | O_CREAT, 0o644)
            if fd >= 0:
                yield from sys.pwrite(fd, rng.choice((4, 12, 52, 80)) * KiB,
                                      rng.randrange(16) * 4 * KiB)
                if i % 3 == 0:
                    yield from sys.fsync(fd)
                yield from sys.close(fd)
            if i % 7 == 0:
                yield from sys.unlink(f"/p/f{(i * 13) % 200}")
            if i % 11 == 0:
                yield from sys.rename(path, f"/p/r{i % 50}")
            i += 1
            yield from sys.nanosleep(rng.randrange(1, 5) * MS)

    def reader(sys: Any, rng: random.Random) -> GEN:
        while True:
            fd = yield from sys.open(f"/p/f{rng.randrange(200)}", O_RDONLY, 0)
            if fd >= 0:
                yield from sys.read(fd, 16 * KiB)
                yield from sys.close(fd)
            yield from sys.nanosleep(3 * MS)

    return Scenario(
        "protocol", protocol.__doc__ or "",
        [ProcessSpec("churn", churn), ProcessSpec("reader", reader)],
        duration_s=45.0,
        kernel={"physmem_mb": 16, "maxvnodes": 64, "syncdelay": 4, "filedelay": 4,
                "dirdelay": 3, "metadelay": 2,
                # data writes fail now and then; the metadata blocks at the start of the disk
                # (bitmaps, inodes) fail half the time: since FFS's ordering writes most inode
                # and directory updates with wait, the asynchronous metadata writes that fail
                # in biodone are mostly the syncer's bitmap writes, and a run must see several
                "faults": [{"kind": "fraction", "fraction": 0.03, "op": "write"},
                           {"kind": "range", "start": 1, "end": 64, "fraction": 0.5,
                            "op": "write"}]})


def interactive_reader(sys: Any, rng: random.Random) -> GEN:
    """A desktop program reading a random 16 KiB piece of the cold 256 MiB /home/mail.db
    every two seconds or so (mail, a browser cache): the 2004 desktop's interactive reader."""
    fd = yield from sys.open("/home/mail.db", O_RDONLY, 0)
    if fd < 0:
        return
    yield from sys.nanosleep(rng.randrange(2000) * MS)
    while True:
        off = rng.randrange((256 * MiB) // (16 * KiB)) * 16 * KiB
        yield from sys.pread(fd, 16 * KiB, off)
        yield from sys.nanosleep(rng.randrange(1500, 2500) * MS)


def pr24596() -> Scenario:
    """kern/24596 (2004): "large backlogs of unflushed pages", as the PR's mechanisms make
    them. On a 2004 desktop (256 MB, one 7200 rpm ATA disk), eight editors each rewrite
    random 4 KiB pieces of their own 256 KiB file through write(2) in bursts (10 s of 25
    writes a second, then 70 s quiet; one editor at a time), four programs store to random
    pages of their own 8 MiB shared mapping in the same way (100 stores a second for 20 s,
    then 60 s quiet; one at a time), and eight interactive programs read random 16 KiB
    pieces of a cold 256 MiB file.
    Every later burst rewrites data written recently: through UBC windows still mapped from
    the burst before, and through the programs' own mappings. Under 2.0's syncer a file found
    clean is taken off the worklist and the next burst's stores fault nowhere, so its pages
    stay dirty, on no list, with the kernel unaware (the PR's problems 2 and 3);
    `genfs.pr24596_fix` write-protects the pages of a file found clean, and they fault."""
    period = 80 * S

    def bursts(path: str, on_s: float, offset_s: float, per_s: int, store: Any) -> Any:
        """A process that opens `path` and calls `store(sys, fd, rng)` `per_s` times a
        second for `on_s` of every 80 s, from `offset_s`."""
        def run(sys: Any, rng: random.Random) -> GEN:
            fd = yield from sys.open(path, O_RDWR, 0)
            if fd < 0:
                return
            t0 = sys.now()
            k = 0
            while True:
                begin = t0 + k * period + int(offset_s * S)
                end = begin + int(on_s * S)
                now = sys.now()
                if now < begin:
                    yield from sys.nanosleep(begin - now)
                while sys.now() < end:
                    got = yield from store(sys, fd, rng)
                    if got < 0:
                        return
                    yield from sys.nanosleep(S // per_s)
                k += 1
        return run

    def pwrite_piece(sys: Any, fd: int, rng: random.Random) -> Generator[Any, Any, int]:
        got: int = yield from sys.pwrite(fd, 4 * KiB, rng.randrange(64) * 4 * KiB)
        return got

    def store_page(sys: Any, fd: int, rng: random.Random) -> Generator[Any, Any, int]:
        got: int = yield from sys.mmap_write(fd, rng.randrange(2048) * 4 * KiB, 4 * KiB)
        return got

    def editor(i: int) -> Any:
        return bursts(f"/home/doc{i}.odt", 10.0, 10.0 * i, 25, pwrite_piece)

    def mapper(i: int) -> Any:
        return bursts(f"/home/map{i}.db", 20.0, 20.0 * i, 100, store_page)

    return Scenario(
        "pr24596", pr24596.__doc__ or "",
        [*[ProcessSpec(f"editor{i}", editor(i)) for i in range(8)],
         *[ProcessSpec(f"mapper{i}", mapper(i)) for i in range(4)],
         *[ProcessSpec(f"reader{i}", interactive_reader, start_ns=1 * S) for i in range(8)]],
        setup=[SetupItem("/home", is_dir=True), SetupItem("/home/mail.db", 256 * MiB),
               *[SetupItem(f"/home/doc{i}.odt", 256 * KiB) for i in range(8)],
               *[SetupItem(f"/home/map{i}.db", 8 * MiB) for i in range(4)]],
        duration_s=240.0,
        kernel={"physmem_mb": 256, "disk": "hdd"})


def steadywriter() -> Scenario:
    """A steady sequential writer beside interactive readers and small saves (vfslab's
    main job before it modelled PR kern/24596, when it was named after it). A writer produces a
    large file at 4 MB/s (a video capture, a download) on a 2004 desktop: 256 MB of memory, one
    7200 rpm ATA disk. Eight interactive programs each read a random 16 KiB piece of a cold
    256 MiB file every two seconds or so (mail, a browser cache); a small-file user saves a few
    files every few seconds. With 2.0's write-behind the writer's data leaves as it is
    written; with `ffs.write_behind=false` the 30 s syncer lets ~120 MB pile up and writes it
    in one burst during which every interactive read waits behind the flush."""
    big = 1024 * MiB

    def saver(sys: Any, rng: random.Random) -> GEN:
        i = 0
        while True:
            yield from sys.nanosleep(rng.randrange(2000, 5000) * MS)
            for _ in range(rng.randrange(1, 4)):
                fd = yield from sys.open(f"/home/doc{i % 40}.txt", O_WRONLY | O_CREAT | O_TRUNC,
                                         0o644)
                if fd >= 0:
                    yield from sys.write(fd, rng.choice((4, 8, 24)) * KiB)
                    yield from sys.close(fd)
                i += 1

    return Scenario(
        "steadywriter", steadywriter.__doc__ or "",
        [ProcessSpec("writer", paced_writer("/home/capture.dv", big, 64 * KiB, 4_000_000)),
         *[ProcessSpec(f"reader{i}", interactive_reader, start_ns=1 * S) for i in range(8)],
         ProcessSpec("saver", saver)],
        setup=[SetupItem("/home", is_dir=True), SetupItem("/home/mail.db", 256 * MiB)],
        duration_s=120.0,
        kernel={"physmem_mb": 256, "disk": "hdd"})
