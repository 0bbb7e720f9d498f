"""Workload patterns a scenario file names in its `[[process]]` tables.

Each pattern is a function of keyword parameters returning a workload body `body(sys, rng)`.
The parameters are plain values already parsed (bytes, nanoseconds, counts); `toml_file.py`
parses and checks them against `PATTERNS` below.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from typing import Any

from vfslab.kern.fcntl import O_APPEND, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, SEEK_SET

GEN = Generator[Any, Any, None]
S = 1_000_000_000


def writer(path: str, size: int, bs: int, rate: float = 0.0, fsync_every: int = 0,
           wrap: bool = True) -> Any:
    """Sequential writes of `bs` at `rate` bytes/s (0: flat out), rewriting from the start
    after `size` bytes when `wrap`."""

    def body(sys: Any, rng: random.Random) -> GEN:
        fd = yield from sys.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0:
            return
        start = sys.now()
        off = n = 0
        while True:
            if off >= size:
                if not wrap:
                    break
                off = 0
                yield from sys.lseek(fd, 0, SEEK_SET)
            got = yield from sys.write(fd, bs)
            if got < 0:
                break
            off += got
            n += 1
            if fsync_every and n % fsync_every == 0:
                yield from sys.fsync(fd)
            if rate > 0:
                due = start + int(n * bs * S / rate)
                now = sys.now()
                if due > now:
                    yield from sys.nanosleep(due - now)
        yield from sys.close(fd)

    return body


def reader(path: str, size: int, bs: int, think: int = 0, random_offsets: bool = False) -> Any:
    """Reads of `bs` from a file of `size` bytes (created before the run), sequential or at
    random aligned offsets, with `think` ns between reads."""

    def body(sys: Any, rng: random.Random) -> GEN:
        fd = yield from sys.open(path, O_RDONLY, 0)
        if fd < 0:
            return
        nblk = max(1, size // bs)
        while True:
            if random_offsets:
                got = yield from sys.pread(fd, bs, rng.randrange(nblk) * bs)
            else:
                got = yield from sys.read(fd, bs)
                if got <= 0:
                    yield from sys.lseek(fd, 0, SEEK_SET)
            if think:
                yield from sys.nanosleep(think)

    return body


def randwrite(path: str, size: int, bs: int, fsync_every: int = 0, think: int = 0) -> Any:
    """Overwrites of `bs` at random aligned offsets of an existing file, fsync every N."""

    def body(sys: Any, rng: random.Random) -> GEN:
        fd = yield from sys.open(path, O_RDWR, 0)
        if fd < 0:
            return
        nblk = max(1, size // bs)
        n = 0
        while True:
            yield from sys.pwrite(fd, bs, rng.randrange(nblk) * bs)
            n += 1
            if fsync_every and n % fsync_every == 0:
                yield from sys.fsync(fd)
            if think:
                yield from sys.nanosleep(think)

    return body


def appender(path: str, bs: int, think: int = 0, fsync_every: int = 1,
             datasync: bool = True) -> Any:
    """A log: small O_APPEND records, each (or every Nth) made durable with fdatasync."""

    def body(sys: Any, rng: random.Random) -> GEN:
        fd = yield from sys.open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if fd < 0:
            return
        n = 0
        while True:
            yield from sys.write(fd, bs)
            n += 1
            if fsync_every and n % fsync_every == 0:
                if datasync:
                    yield from sys.fdatasync(fd)
                else:
                    yield from sys.fsync(fd)
            if think:
                yield from sys.nanosleep(think)

    return body


def smallfiles(dir: str, count: int, sizes: list[int], think: int = 0, batch: int = 1,
               fsync: bool = False) -> Any:
    """Create `count` files of the given sizes under `dir` (cycling), `batch` at a time with
    `think` ns between batches; then start over, truncating them."""

    def body(sys: Any, rng: random.Random) -> GEN:
        yield from sys.mkdir(dir, 0o755)
        i = 0
        while True:
            fd = yield from sys.open(f"{dir}/f{i % count}", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0:
                yield from sys.write(fd, rng.choice(sizes))
                if fsync:
                    yield from sys.fsync(fd)
                yield from sys.close(fd)
            i += 1
            if think and i % batch == 0:
                yield from sys.nanosleep(think)

    return body


def untar(dir: str, ndirs: int, files_per_dir: int, sizes: list[int], repeat: bool = False
          ) -> Any:
    """Extract an archive: directories, then files written whole and closed, no fsync."""

    def body(sys: Any, rng: random.Random) -> GEN:
        rnd = 0
        while True:
            root = f"{dir}{rnd}" if repeat else dir
            yield from sys.mkdir(root, 0o755)
            for d in range(ndirs):
                yield from sys.mkdir(f"{root}/d{d}", 0o755)
                for f in range(files_per_dir):
                    fd = yield from sys.open(f"{root}/d{d}/f{f}", O_WRONLY | O_CREAT | O_TRUNC,
                                             0o644)
                    if fd < 0:
                        return
                    yield from sys.write(fd, rng.choice(sizes))
                    yield from sys.close(fd)
            if not repeat:
                return
            rnd += 1

    return body


def database(path: str, size: int, bs: int, log: str, log_bs: int, writes_per_txn: int,
             think: int = 0) -> Any:
    """A database: each transaction appends a log record and fdatasyncs the log, then
    overwrites `writes_per_txn` random pages of the data file; checkpoints fsync it."""

    def body(sys: Any, rng: random.Random) -> GEN:
        dfd = yield from sys.open(path, O_RDWR, 0)
        lfd = yield from sys.open(log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if dfd < 0 or lfd < 0:
            return
        nblk = max(1, size // bs)
        txn = 0
        while True:
            yield from sys.write(lfd, log_bs)
            yield from sys.fdatasync(lfd)
            for _ in range(writes_per_txn):
                yield from sys.pwrite(dfd, bs, rng.randrange(nblk) * bs)
            txn += 1
            if txn % 64 == 0:
                yield from sys.fsync(dfd)
            if think:
                yield from sys.nanosleep(think)

    return body


def mmap_writer(path: str, size: int, pages_per_round: int, think: int,
                msync_every: int = 0) -> Any:
    """Stores through a shared mapping of an existing file: random pages dirtied by faults,
    msync every N rounds (0: never; writeback is left to the policy)."""

    def body(sys: Any, rng: random.Random) -> GEN:
        fd = yield from sys.open(path, O_RDWR, 0)
        if fd < 0:
            return
        npages = max(1, size // 4096)
        n = 0
        while True:
            for _ in range(pages_per_round):
                yield from sys.mmap_write(fd, rng.randrange(npages) * 4096, 4096)
            n += 1
            if msync_every and n % msync_every == 0:
                yield from sys.msync(fd, 0, size)
            yield from sys.nanosleep(think)

    return body


# pattern -> (function, {param: kind}) with kinds: path, size, count, ns, rate, bool, sizes
PATTERNS: dict[str, tuple[Callable[..., Any], dict[str, str]]] = {
    "writer": (writer, {"path": "path", "size": "size", "bs": "size", "rate": "rate",
                        "fsync_every": "count", "wrap": "bool"}),
    "reader": (reader, {"path": "path", "size": "size", "bs": "size", "think": "ns",
                        "random_offsets": "bool"}),
    "randwrite": (randwrite, {"path": "path", "size": "size", "bs": "size",
                              "fsync_every": "count", "think": "ns"}),
    "appender": (appender, {"path": "path", "bs": "size", "think": "ns",
                            "fsync_every": "count", "datasync": "bool"}),
    "smallfiles": (smallfiles, {"dir": "path", "count": "count", "sizes": "sizes",
                                "think": "ns", "batch": "count", "fsync": "bool"}),
    "untar": (untar, {"dir": "path", "ndirs": "count", "files_per_dir": "count",
                      "sizes": "sizes", "repeat": "bool"}),
    "database": (database, {"path": "path", "size": "size", "bs": "size", "log": "path",
                            "log_bs": "size", "writes_per_txn": "count", "think": "ns"}),
    "mmap_writer": (mmap_writer, {"path": "path", "size": "size",
                                  "pages_per_round": "count", "think": "ns",
                                  "msync_every": "count"}),
}
# Patterns whose file must exist before the run (created by the scenario's setup).
NEEDS_FILE = {"reader": "path", "randwrite": "path", "database": "path", "mmap_writer": "path"}
