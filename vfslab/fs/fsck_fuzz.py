"""The image fuzz of fsck: a populated file system, its metadata blocks mutated at seeded
places, then `fsck -y` and everything a person would do next. A mutated image must end one of
three ways: clean (fsck found nothing), repaired (a second fsck finds nothing, and the image
mounts, takes new files and unmounts clean), or unrepairable (fsck says so and writes
nothing). Anything else is a defect of fsck: an exception, a run past its time limit, or a
repaired image that the recheck, the mount or the new files find corrupt.

Metadata blocks are the image's bytes blocks (superblock, bitmaps, inode table, directories,
indirect blocks); file data are version stamps and are left alone. A mutation is one of: a
byte set to a random value, a 32-bit word set to 0, 1, 0xFFFFFFFF, a random value or a small
number (an inode or block number's size), or the whole block zeroed."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

NBLOCKS = 16384          # 64 MiB: room for a file with double-indirect blocks
NINODES = 512
OUTCOMES = ("clean", "repaired", "unrepairable", "exception", "timeout",
            "recheck not clean", "corrupt after mount")
BAD = frozenset(("exception", "timeout", "recheck not clean", "corrupt after mount"))


class _TimeLimit(Exception):
    pass


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _TimeLimit in this (the main) thread after `seconds` of wall time."""
    def fire(_sig: int, _frame: Any) -> None:
        raise _TimeLimit

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _boot_and_run(store: dict[int, Any], body: Any, until_s: float = 60.0) -> dict[str, Any]:
    """Mount `store`, run `body(sys, out)` in a process, unmount everything; `out` holds what
    the body recorded and "unmount" the unmount's error."""
    from vfslab.kern.init_main import KernelConfig, vfs_unmountall
    from vfslab.kern.kern_proc import Proc, ProcSyscalls
    from vfslab.machine import boot

    out: dict[str, Any] = {}

    def then(k: Any) -> Generator[Any, Any, None]:
        sys = ProcSyscalls(k, Proc(1, "fuzz"))
        yield from body(sys, out)
        out["unmount"] = yield from vfs_unmountall(k)

    k = boot(KernelConfig(fs_blocks=NBLOCKS, fs_inodes=NINODES, disk="ssd"), store=store,
             then=then)
    k.m.run(until=int(until_s * 1e9))
    return out


def populated_image() -> dict[int, Any]:
    """A file system made as a person's would be: directories two deep, empty, small and large
    files (one past the single indirect block), a hard link, a symlink, files removed."""
    from vfslab.fs.ufs_layout import mkfs
    from vfslab.kern.fcntl import O_CREAT, O_WRONLY

    store: dict[int, Any] = {}
    mkfs(store, NBLOCKS, NINODES)

    def body(sys: Any, out: dict[str, Any]) -> Generator[Any, Any, None]:
        sizes = [0, 100, 4096, 20_000, 70_000, 300_000]
        for d in range(4):
            yield from sys.mkdir(f"/d{d}")
            yield from sys.mkdir(f"/d{d}/sub")
            for i, n in enumerate(sizes):
                path = f"/d{d}/sub/f{i}" if i % 2 else f"/d{d}/f{i}"
                fd = yield from sys.open(path, O_WRONLY | O_CREAT)
                if n:
                    yield from sys.write(fd, n)
                yield from sys.close(fd)
        fd = yield from sys.open("/big", O_WRONLY | O_CREAT)
        left = 5 * 1024 * 1024                    # past NDADDR + NINDIR blocks
        while left:
            left -= (yield from sys.write(fd, min(left, 1 << 20)))
        yield from sys.close(fd)
        yield from sys.link("/d0/f0", "/d1/hard")
        yield from sys.symlink("/d2/f2", "/d3/soft")
        yield from sys.unlink("/d1/f2")
        yield from sys.unlink("/d3/sub/f5")
        out["done"] = True

    out = _boot_and_run(store, body)
    if not out.get("done") or out.get("unmount"):
        raise RuntimeError(f"populating the fuzz image failed: {out}")
    return store


def mutate(store: dict[int, Any], rng: random.Random, n: int) -> list[str]:
    """Apply `n` seeded mutations to the image's metadata blocks; what each did."""
    meta = sorted(b for b, v in store.items() if isinstance(v, (bytes, bytearray)))
    done = []
    for _ in range(n):
        blk = rng.choice(meta)
        data = bytearray(store[blk])
        kind = rng.random()
        if kind < 0.05:
            data = bytearray(len(data))
            what = "zeroed"
        elif kind < 0.4:
            off = rng.randrange(len(data))
            data[off] = rng.randrange(256)
            what = f"byte {off}"
        else:
            off = rng.randrange(len(data) // 4) * 4
            val = rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(1 << 32), rng.randrange(64),
                              rng.randrange(NBLOCKS + 64)])
            data[off:off + 4] = val.to_bytes(4, "little")
            what = f"word {off} = {val:#x}"
        store[blk] = bytes(data)
        done.append(f"block {blk}: {what}")
    return done


def _takes_files(store: dict[int, Any]) -> str:
    """Mount, create, write and fsync 10 files, read a directory, unmount; "" if all went
    well and the image is clean after, else what did not."""
    from vfslab.fs.fsck import fsck_image
    from vfslab.kern.fcntl import O_CREAT, O_WRONLY

    def body(sys: Any, out: dict[str, Any]) -> Generator[Any, Any, None]:
        ok = 0
        for i in range(10):
            fd = yield from sys.open(f"/fuzz{i}", O_WRONLY | O_CREAT)
            if fd < 0:
                out.setdefault("errors", []).append(f"open /fuzz{i}: {fd}")
                continue
            if (yield from sys.write(fd, 30_000)) == 30_000 and (yield from sys.fsync(fd)) == 0:
                ok += 1
            yield from sys.close(fd)
        out["ok"] = ok

    out = _boot_and_run(store, body)
    if out.get("ok") != 10:
        return f"new files: {out.get('ok', 0)} of 10 written ({out.get('errors', ['hung'])[:2]})"
    if out.get("unmount"):
        return f"unmount: error {out['unmount']}"
    left = fsck_image(store, NBLOCKS)
    return f"after new files: {left[:2]}" if left else ""


@dataclass
class Outcome:
    seed: int
    outcome: str
    detail: str = ""
    mutations: list[str] = field(default_factory=list)
    fsck_s: float = 0.0


def fuzz_one(base: dict[int, Any], seed: int, max_mutations: int = 40,
             time_limit_s: float = 10.0) -> Outcome:
    """Mutate a copy of `base` (seed `seed`), repair it, and follow up as a person would."""
    from vfslab.fs.fsck import fsck_image
    from vfslab.fs.fsck_repair import Repairer, Unrepairable

    rng = random.Random(seed)
    store = dict(base)
    muts = mutate(store, rng, rng.randint(1, max_mutations))
    t0 = time.perf_counter()
    try:
        with _time_limit(time_limit_s):
            r = Repairer(store, NBLOCKS)
            try:
                repairs = r.run()
            except Unrepairable as e:
                return Outcome(seed, "unrepairable", str(e), muts, time.perf_counter() - t0)
            if not r.before and not repairs:
                return Outcome(seed, "clean", "", muts, time.perf_counter() - t0)
            again = fsck_image(store, NBLOCKS)
    except _TimeLimit:
        return Outcome(seed, "timeout", f"fsck -y ran past {time_limit_s:g} s", muts,
                       time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - every other exception is the finding itself
        return Outcome(seed, "exception", f"{type(e).__name__}: {e}", muts,
                       time.perf_counter() - t0)
    spent = time.perf_counter() - t0
    if again:
        return Outcome(seed, "recheck not clean", "; ".join(again[:3]), muts, spent)
    try:
        with _time_limit(time_limit_s * 6):
            bad = _takes_files(store)
    except _TimeLimit:
        return Outcome(seed, "corrupt after mount", "the mount or the new files hung", muts,
                       spent)
    except Exception as e:  # noqa: BLE001 - a panic or a traceback of the kernel on the image
        return Outcome(seed, "corrupt after mount", f"{type(e).__name__}: {e}", muts, spent)
    if bad:
        return Outcome(seed, "corrupt after mount", bad, muts, spent)
    return Outcome(seed, "repaired", f"{len(repairs)} repairs", muts, spent)


__all__ = ["BAD", "OUTCOMES", "Outcome", "fuzz_one", "mutate", "populated_image"]
