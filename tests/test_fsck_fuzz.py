"""fsck -y against mutated images: every image ends clean, repaired (and then rechecked clean,
mounted and given new files) or unrepairable, never in a traceback, a hang or a corrupt
"repaired" image; and the repairs fsck_ffs makes that the fuzz found missing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vfslab.fs.fsck import fsck_image, scan_image
from vfslab.fs.fsck_fuzz import BAD, NBLOCKS, _takes_files, fuzz_one, populated_image
from vfslab.fs.fsck_repair import LOST_FOUND, read_dinode, repair_image, write_dinode
from vfslab.fs.ufs_layout import BSIZE, ROOTINO, Dinode, Superblock, unpack_dirents


@pytest.fixture(scope="module")
def base() -> dict[int, Any]:
    return populated_image()


def _dir_ino(store: dict[int, Any], path: str) -> int:
    """The inode a path names, walking the directories as fsck reads them."""
    sc = scan_image(store, NBLOCKS)
    ino = ROOTINO
    for part in path.strip("/").split("/"):
        ino = dict(sc.entries[ino])[part]
    return ino


def test_the_fuzz_image_is_clean_and_has_what_it_should(base: dict[int, Any]) -> None:
    assert fsck_image(dict(base), NBLOCKS) == []
    sc = scan_image(dict(base), NBLOCKS)
    big = sc.inodes[_dir_ino(base, "/big")]
    assert big.size == 5 * 1024 * 1024 and big.dib      # a double-indirect map to mutate
    assert sc.inodes[_dir_ino(base, "/d1/hard")].nlink == 2


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_no_mutated_image_ends_in_an_exception_a_hang_or_a_corrupt_repair(
        base: dict[int, Any], seed: int) -> None:
    o = fuzz_one(base, seed)
    assert o.outcome not in BAD, (seed, o.outcome, o.detail, o.mutations)


def test_a_zeroed_directory_block_gets_its_dot_entries_back(base: dict[int, Any]) -> None:
    """fsck_ffs pass2: MISSING '.' -> FIX in a block with no entry at all (it was left
    unrepairable: "no '.' entry" after every pass); its files go to lost+found."""
    store = dict(base)
    sb = Superblock.unpack(store[0])
    dino = _dir_ino(store, "/d2")
    d = read_dinode(store, sb, dino)
    store[d.db[0]] = bytes(BSIZE)
    repairs = repair_image(store, NBLOCKS)
    assert any(f"directory {dino}: missing '.', added" in r for r in repairs), repairs
    names = {n for _s, _i, n in unpack_dirents(store[d.db[0]])}
    assert {".", ".."} <= names
    assert fsck_image(store, NBLOCKS) == []
    assert _takes_files(store) == ""


def test_a_directory_with_no_block_is_removed(base: dict[int, Any]) -> None:
    """fsck_ffs pass2: ZERO LENGTH DIRECTORY -> REMOVE (no block can hold its '.')."""
    store = dict(base)
    sb = Superblock.unpack(store[0])
    dino = _dir_ino(store, "/d3/sub")
    d = read_dinode(store, sb, dino)
    d.db[0] = 0
    d.size = 0
    write_dinode(store, sb, dino, d)
    repairs = repair_image(store, NBLOCKS)
    assert f"inode {dino}: cleared (zero length directory)" in repairs, repairs
    assert "sub" not in dict(scan_image(store, NBLOCKS).entries[_dir_ino(store, "/d3")])
    assert fsck_image(store, NBLOCKS) == []


@pytest.mark.parametrize("root", [Dinode(), Dinode(0o100644, 1, 10, 0, 1)],
                         ids=["unallocated", "not a directory"])
def test_a_lost_root_is_reallocated_and_the_tree_found_in_lost_and_found(
        base: dict[int, Any], root: Dinode) -> None:
    """fsck_ffs pass2: ROOT INODE UNALLOCATED -> ALLOCATE, NOT DIRECTORY -> REALLOCATE; the
    directories the old root held are reconnected to lost+found (it was unrepairable)."""
    store = dict(base)
    sb = Superblock.unpack(store[0])
    d1 = _dir_ino(store, "/d1")
    write_dinode(store, sb, ROOTINO, root)
    repairs = repair_image(store, NBLOCKS)
    assert any(r.startswith("root inode ") and "reallocated" in r for r in repairs), repairs
    lf = dict(scan_image(store, NBLOCKS).entries[ROOTINO])[LOST_FOUND]
    assert dict(scan_image(store, NBLOCKS).entries[lf])[f"#{d1}"] == d1
    assert fsck_image(store, NBLOCKS) == []
    assert _takes_files(store) == ""


def test_a_wrong_dotdot_is_found_and_set_to_the_parent(base: dict[int, Any]) -> None:
    """fsck_ffs pass3: BAD INODE NUMBER FOR '..' -> FIX; fsck called this image clean."""
    from vfslab.fs.fsck_repair import _set_dirent

    store = dict(base)
    sb = Superblock.unpack(store[0])
    dino = _dir_ino(store, "/d2/sub")
    blk = read_dinode(store, sb, dino).db[0]
    slot = next(s for s, _i, n in unpack_dirents(store[blk]) if n == "..")
    _set_dirent(store, blk, slot, _dir_ino(store, "/d1"), "..")
    parent = _dir_ino(store, "/d2")
    assert f"directory {dino}: '..' points to {_dir_ino(store, '/d1')}, not its parent " \
           f"{parent}" in fsck_image(dict(store), NBLOCKS)
    repair_image(store, NBLOCKS)
    assert dict((n, i) for _s, i, n in unpack_dirents(store[blk]))[".."] == parent
    assert fsck_image(store, NBLOCKS) == []
