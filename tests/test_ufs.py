"""The file system: mkfs, errno semantics, indirect blocks, persistence across unmount and
mount (version exact), ENOSPC, and fsck on clean images."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sysharness import run_body, stamps_of

from vfslab.fs.fsck import fsck_image
from vfslab.fs.ufs_layout import mkfs
from vfslab.kern.fcntl import (
    EEXIST,
    EINVAL,
    EISDIR,
    ENAMETOOLONG,
    ENOENT,
    ENOSPC,
    ENOTDIR,
    ENOTEMPTY,
    EPERM,
    O_CREAT,
    O_EXCL,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
)
from vfslab.kern.kern_proc import ProcSyscalls

KiB = 1024
MiB = 1024 * 1024
GEN = Generator[Any, Any, Any]


def test_mkfs_makes_a_clean_image() -> None:
    store: dict[int, Any] = {}
    mkfs(store, 4096, 256)
    assert fsck_image(store) == []


def test_errno_semantics() -> None:
    def body(sys: Any) -> GEN:
        r = {}
        r["open_missing"] = yield from sys.open("/nope", O_RDONLY)
        fd = yield from sys.open("/a", O_WRONLY | O_CREAT, 0o644)
        r["fd"] = fd
        r["excl"] = yield from sys.open("/a", O_WRONLY | O_CREAT | O_EXCL, 0o644)
        yield from sys.close(fd)
        r["mkdir"] = yield from sys.mkdir("/d", 0o755)
        r["mkdir_again"] = yield from sys.mkdir("/d", 0o755)
        r["open_dir_write"] = yield from sys.open("/d", O_WRONLY)
        r["under_file"] = yield from sys.open("/a/x", O_WRONLY | O_CREAT)
        r["long"] = yield from sys.open("/" + "n" * 256, O_WRONLY | O_CREAT)
        fd2 = yield from sys.open("/d/inner", O_WRONLY | O_CREAT)
        yield from sys.close(fd2)
        r["rmdir_full"] = yield from sys.rmdir("/d")
        r["unlink_dir"] = yield from sys.unlink("/d")
        r["rename"] = yield from sys.rename("/a", "/d/b")
        r["stat_old"] = yield from sys.stat("/a")
        r["rename_file_over_dir"] = yield from sys.rename("/d/b", "/d")
        r["unlink"] = yield from sys.unlink("/d/inner")
        r["unlink_b"] = yield from sys.unlink("/d/b")
        r["rmdir"] = yield from sys.rmdir("/d")
        r["stat_gone"] = yield from sys.stat("/d")
        r["close_bad"] = yield from sys.close(77)
        return r

    k, r = run_body(body)
    assert r["open_missing"] == -ENOENT and r["fd"] >= 0 and r["excl"] == -EEXIST
    assert r["mkdir"] == 0 and r["mkdir_again"] == -EEXIST
    assert r["open_dir_write"] == -EISDIR and r["under_file"] == -ENOTDIR
    assert r["long"] == -ENAMETOOLONG
    # unlink(2) of a directory: EPERM, from 2.0's ufs_remove (Linux says EISDIR)
    assert r["rmdir_full"] == -ENOTEMPTY and r["unlink_dir"] == -EPERM
    assert r["rename"] == 0 and r["stat_old"] == -ENOENT
    assert r["rename_file_over_dir"] == -EISDIR
    assert r["unlink"] == 0 and r["unlink_b"] == 0 and r["rmdir"] == 0
    assert r["stat_gone"] == -ENOENT and r["close_bad"] == -9
    assert fsck_image(k.disk.store) == []


def test_names_up_to_255_bytes_take_more_slots_and_survive_reuse_rename_and_remount(
        ) -> None:
    """FFS allows 255-byte names; vfslab's 128-byte slots carry a long one on into one or two
    continuation slots (ufs_layout). Slots freed by an unlink are reused only by a name
    that fits them; fsck reads the blocks clean; a remount finds every name."""
    long = {n: chr(ord("a") + i) * n for i, n in enumerate((123, 124, 247, 248, 255))}

    def body(sys: Any) -> GEN:
        r: dict[str, Any] = {}
        yield from sys.mkdir("/d", 0o755)
        for i, name in enumerate(long.values()):
            fd = yield from sys.open(f"/d/{name}", O_WRONLY | O_CREAT, 0o644)
            yield from sys.write(fd, 100 + i)
            yield from sys.close(fd)
            fd = yield from sys.open(f"/d/s{i}", O_WRONLY | O_CREAT, 0o644)   # between them
            yield from sys.close(fd)
        # slots: . .. 123(1) s0 124(2) s1 247(2) s2 248(3) s3 255(3) s4 = 19 of 32
        r["unlink"] = yield from sys.unlink("/d/s1")                        # frees slot 6
        r["unlink"] += yield from sys.unlink(f"/d/{long[248]}")             # and 10-12
        fd = yield from sys.open(f"/d/{'x' * 250}", O_WRONLY | O_CREAT, 0o644)
        yield from sys.close(fd)                           # 3 slots: the second gap
        fd = yield from sys.open("/d/t", O_WRONLY | O_CREAT, 0o644)
        yield from sys.close(fd)                           # 1 slot: the first
        r["rename"] = yield from sys.rename(f"/d/{long[255]}", f"/d/{'y' * 200}")
        r["toolong"] = yield from sys.open(f"/d/{'z' * 256}", O_WRONLY | O_CREAT, 0o644)
        return r

    k, r = run_body(body)
    assert r == {"unlink": 0, "rename": 0, "toolong": -ENAMETOOLONG}
    image = k.disk.store
    assert fsck_image(image) == []
    from vfslab.fs.fsck import scan_image
    from vfslab.fs.ufs_layout import read_block, unpack_dirents

    sc = scan_image(image)
    names = {n: ino for n, ino in sc.entries[max(sc.entries)]}      # /d, the newest directory
    assert set(names) == {".", "..", long[123], long[124], long[247], "x" * 250, "y" * 200,
                          "t", *(f"s{i}" for i in (0, 2, 3, 4))}
    dblk = [b for b in range(sc.sb.data_start, sc.sb.nblocks)
            if any(n == "x" * 250 for _s, _i, n in unpack_dirents(read_block(image, b)))]
    slots = {n: s for s, _i, n in unpack_dirents(read_block(image, dblk[0]))}
    assert slots["x" * 250] == slots["s3"] - 3          # the 248-byte name's three slots
    assert slots["t"] == slots[long[247]] - 1           # s1's one

    def read(sys: Any) -> GEN:
        sizes = []
        for name in (long[123], long[124], long[247], "y" * 200):
            sizes.append((yield from sys.stat(f"/d/{name}")))
        return sizes

    _k2, sizes = run_body(read, store=dict(image))
    assert sizes == [100, 101, 102, 104]


def test_getdents_reads_as_many_blocks_as_its_count_allows_as_2_0s_ufs_readdir() -> None:
    """ufs_readdir cuts the count to a DIRBLKSIZ boundary (EINVAL if none is left) and
    VOP_READs the directory up to it: one call reads every block a 32 KiB buffer holds (it
    read a block a call, and a replayed python's second getdents found data, not the end)."""
    def body(sys: Any) -> GEN:
        yield from sys.mkdir("/d", 0o755)
        for i in range(40):                   # with . and ..: 42 slots, two blocks
            fd = yield from sys.open(f"/d/f{i}", O_WRONLY | O_CREAT, 0o644)
            yield from sys.close(fd)
        got: dict[str, list[int]] = {}
        for n in (32768, 4096, 5000, 100):
            d = yield from sys.open("/d", O_RDONLY)
            got[str(n)] = []
            for _ in range(3):
                got[str(n)].append((yield from sys.getdents(d, n)))
            yield from sys.close(d)
        return got

    _k, got = run_body(body)
    assert got == {"32768": [8192, 0, 0], "4096": [4096, 4096, 0],
                   "5000": [4608, 3584, 0],              # cut to 9 DIRBLKSIZ, then the rest
                   "100": [-EINVAL, -EINVAL, -EINVAL]}


def test_data_survives_unmount_and_mount_version_exact() -> None:
    size = 5 * MiB + 12 * KiB          # direct, single and double indirect blocks

    def write(sys: Any) -> GEN:
        yield from sys.mkdir("/dir", 0o755)
        fd = yield from sys.open("/dir/big", O_RDWR | O_CREAT | O_TRUNC, 0o644)
        left = size
        while left:
            n = min(left, 64 * KiB)
            yield from sys.write(fd, n)
            left -= n
        yield from sys.pwrite(fd, 100, 3 * 4096 + 5)         # a partial page in the middle
        stamps = yield from stamps_of(sys, fd, size)
        small = yield from sys.open("/dir/small", O_WRONLY | O_CREAT, 0o644)
        yield from sys.write(small, 777)
        return stamps

    k1, stamps = run_body(write)
    image = k1.disk.store
    assert fsck_image(image) == []
    assert len(stamps) == (size + 4095) // 4096 and all(stamps)

    def read(sys: Any) -> GEN:
        fd = yield from sys.open("/dir/big", O_RDONLY)
        got = yield from stamps_of(sys, fd, size)
        sz = yield from sys.fstat(fd)
        small = yield from sys.stat("/dir/small")
        return got, sz, small

    _k2, (got, sz, small) = run_body(read, store=dict(image))
    assert got == stamps and sz == size and small == 777


def test_enospc_leaves_a_consistent_image() -> None:
    def fill(sys: Any) -> GEN:
        fd = yield from sys.open("/fill", O_WRONLY | O_CREAT, 0o644)
        total = 0
        while True:
            n = yield from sys.write(fd, 64 * KiB)
            if n < 0:
                return n, total
            total += n

    k, (err, total) = run_body(fill, fs_blocks=2048, fs_inodes=64)
    assert err == -ENOSPC and 0 < total < 2048 * 4096
    assert fsck_image(k.disk.store) == []


def test_unlinked_files_give_their_blocks_back() -> None:
    def churn(sys: Any) -> GEN:
        for i in range(30):
            fd = yield from sys.open(f"/f{i}", O_WRONLY | O_CREAT, 0o644)
            yield from sys.write(fd, 100 * KiB)
            yield from sys.close(fd)
            if i % 2:
                yield from sys.unlink(f"/f{i}")
        return 0

    k, _ = run_body(churn, fs_blocks=4096, fs_inodes=64)
    sb = k.rootfs.sb
    assert fsck_image(k.disk.store) == []
    assert sb.free_inodes == 64 - 3 - 15


def test_the_allocator_wraps_at_the_end_of_the_disk() -> None:
    """A writer that keeps replacing a file walks the block rotor to the last block and past
    it; allocation must wrap to the start of the data area, not run into the block after the
    last bitmap block (the inode bitmap, when the disk is a whole number of bitmap blocks)."""
    nblocks = 32768                      # exactly one block-bitmap block

    def churn(sys: Any) -> GEN:
        for i in range(40):              # 160 MiB through a 128 MiB file system
            fd = yield from sys.open(f"/f{i}", O_WRONLY | O_CREAT, 0o644)
            assert (yield from sys.write(fd, 4 * MiB)) == 4 * MiB
            assert (yield from sys.fsync(fd)) == 0
            yield from sys.close(fd)
            if i:
                assert (yield from sys.unlink(f"/f{i - 1}")) == 0
        return k_rotor(sys)

    def k_rotor(sys: Any) -> int:
        return int(sys.k.rootfs.rotor)

    k, rotor = run_body(churn, fs_blocks=nblocks, fs_inodes=64)
    sb = k.rootfs.sb
    assert sb.data_start <= rotor < nblocks
    assert max(k.disk.store) < nblocks, "a block was written past the end of the file system"
    assert fsck_image(k.disk.store) == []


def test_the_allocator_finds_blocks_behind_its_preference() -> None:
    """ffs_alloc searches from the preference to the end and then from the first data block:
    with every free block behind the preference (an append whose next block is near the end
    of a full disk) it finds them; ENOSPC only when none is free. (It used to scan to the end
    of the bitmap block and give up: ENOSPC with blocks free.)"""
    from vfslab.fs.ffs_alloc import ffs_alloc
    from vfslab.kern.fcntl import ENOSPC

    def body(sys: ProcSyscalls) -> Generator[Any, Any, Any]:
        for i in range(40):
            fd = yield from sys.open(f"/f{i}", O_WRONLY | O_CREAT)
            got = yield from sys.write(fd, 16 * KiB)
            yield from sys.close(fd)
            if got < 0:
                break
        ump = sys.k.rootfs
        assert ump.sb.free_blocks == 0
        assert (yield from sys.unlink("/f0")) == 0        # its blocks are at the start
        free = ump.sb.free_blocks
        err, got = yield from ffs_alloc(ump, ump.sb.nblocks - 1, 1)
        err2, got2 = yield from ffs_alloc(ump, ump.sb.nblocks - 1, free)
        err3, _ = yield from ffs_alloc(ump, ump.sb.nblocks - 1, 1)
        return free, err, got, err2, got2, err3, ump.sb.data_start

    _, (free, err, got, err2, got2, err3, start) = run_body(body, fs_blocks=100,
                                                              fs_inodes=32)
    assert free >= 2 and err == 0 and len(got) == 1 and got[0] < 20
    assert err2 == 0 and len(got) + len(got2) == free
    assert err3 == ENOSPC
