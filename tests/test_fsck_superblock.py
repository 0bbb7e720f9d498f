"""fsck trusts nothing in the superblock it can check: every layout field is checked against
the image's size and the block and inode counts, a wrong one rewritten from what mkfs makes
(there is no alternate superblock), an impossible one refused with exit 8 and nothing written.
No input ends in a traceback, and the image file keeps its size."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vfslab.cli import cli
from vfslab.crash.image import load_image, save_image
from vfslab.fs.fsck import fsck_image
from vfslab.fs.ufs_layout import Superblock, mkfs
from vfslab.kern.init_main import KernelConfig

NBLOCKS = 4096
FIELDS = ["magic", "version", "nblocks", "ninodes", "bmap_start", "bmap_blocks", "imap_start",
          "imap_blocks", "itable_start", "itable_blocks", "data_start", "free_blocks",
          "free_inodes", "clean", "root_ino", "generation"]


def _image(tmp: Path, **fields: int) -> Path:
    store: dict[int, Any] = {}
    mkfs(store, NBLOCKS, 256)
    sb = Superblock.unpack(store[0])
    for k, v in fields.items():
        setattr(sb, k, v)
    store[0] = sb.pack()
    path = tmp / "img.raw"
    save_image(store, NBLOCKS, path)
    return path


def _takes_files(store: dict[int, Any]) -> bool:
    """Mount the image, create, write and fsync 20 files, unmount: is it clean after?"""
    from vfslab.kern.fcntl import O_CREAT, O_WRONLY
    from vfslab.kern.init_main import vfs_unmountall
    from vfslab.kern.kern_proc import Proc, ProcSyscalls
    from vfslab.machine import boot

    out: dict[str, int] = {}

    def then(k: Any) -> Generator[Any, Any, None]:
        sys = ProcSyscalls(k, Proc(1, "t"))
        n = 0
        for i in range(20):
            fd = yield from sys.open(f"/new{i}", O_WRONLY | O_CREAT)
            if fd >= 0 and (yield from sys.write(fd, 20_000)) == 20_000 and \
                    (yield from sys.fsync(fd)) == 0:
                n += 1
            yield from sys.close(fd)
        out["n"] = n
        out["err"] = yield from vfs_unmountall(k)

    k = boot(KernelConfig(fs_blocks=NBLOCKS, fs_inodes=256, disk="ssd"), store=store,
             then=then)
    k.m.run(until=30 * 10**9)
    return out.get("n") == 20 and out.get("err") == 0 and fsck_image(store, NBLOCKS) == []


@pytest.mark.parametrize("fields", [
    {"data_start": 1}, {"bmap_start": 0xFFFFFFFF}, {"bmap_start": 0x7FFFFFFF},
    {"bmap_blocks": 0}, {"imap_blocks": 0}, {"ninodes": 40}, {"nblocks": 0xFFFFFFFF},
    {"ninodes": 0xFFFFFFFF}, {"itable_blocks": 10**9}, {"root_ino": 7},
])
def test_a_wrong_layout_field_is_rewritten_and_the_image_then_mounts_and_takes_files(
        tmp_path: Path, fields: dict[str, int]) -> None:
    img = _image(tmp_path, **fields)
    size = img.stat().st_size
    check = CliRunner().invoke(cli, ["fsck", str(img)])
    assert check.exit_code == 4 and "superblock:" in check.output
    fix = CliRunner().invoke(cli, ["fsck", "-y", str(img)])
    assert fix.exit_code == 1, fix.output
    assert "rewritten from the block and inode counts" in fix.output
    assert img.stat().st_size == size
    again = CliRunner().invoke(cli, ["fsck", str(img)])
    assert again.exit_code == 0, again.output
    store, _n = load_image(img)
    assert _takes_files(store)


def test_an_image_that_is_not_a_file_system_is_exit_8_and_left_alone(tmp_path: Path) -> None:
    img = _image(tmp_path, magic=0x1234)
    before = img.read_bytes()
    r = CliRunner().invoke(cli, ["fsck", "-y", str(img)])
    assert r.exit_code == 8 and "CANNOT REPAIR" in r.output and "bad magic" in r.output
    assert img.read_bytes() == before


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS),
       value=st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 2**31, 2**32 - 1])))
def test_no_superblock_field_value_makes_fsck_crash_or_resize_the_image(
        tmp_path_factory: pytest.TempPathFactory, field: str, value: int) -> None:
    tmp = tmp_path_factory.mktemp("sb")
    img = _image(tmp, **{field: value})
    size = img.stat().st_size
    r = CliRunner().invoke(cli, ["fsck", "-y", str(img)])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert r.exit_code in (0, 1, 8), r.output
    assert img.stat().st_size == size
    if r.exit_code in (0, 1):
        again = CliRunner().invoke(cli, ["fsck", str(img)])
        assert again.exit_code == 0, (field, value, again.output)


def test_an_orphan_is_reconnected_whatever_the_generation_counter_holds(tmp_path: Path
                                                                         ) -> None:
    from vfslab.fs.fsck_repair import write_dinode
    from vfslab.fs.ufs_layout import IFREG, Dinode

    store: dict[int, Any] = {}
    sb = mkfs(store, NBLOCKS, 256)
    sb.generation = 0xFFFFFFFF
    store[0] = sb.pack()
    d = Dinode(IFREG | 0o644, 1, 4096, 0, 7)
    d.db[0] = sb.data_start + 10
    store[sb.data_start + 10] = 12345           # a data block's stamp
    write_dinode(store, sb, 5, d)               # inode 5: no name points at it
    img = tmp_path / "orphan.raw"
    save_image(store, NBLOCKS, img)
    r = CliRunner().invoke(cli, ["fsck", "-y", str(img)])
    assert r.exit_code == 1 and "lost+found" in r.output, r.output
    assert CliRunner().invoke(cli, ["fsck", str(img)]).exit_code == 0


def test_a_run_on_an_image_keeps_its_files_and_refuses_one_fsck_would_not_pass(
        tmp_path: Path) -> None:
    from sysharness import run_body, stat_size

    from vfslab.errors import InputError
    from vfslab.kern.fcntl import O_CREAT, O_WRONLY
    from vfslab.runner import RunConfig, run_scenario

    store: dict[str, Any] = {}

    def body(sys: Any) -> Generator[Any, Any, None]:
        fd = yield from sys.open("/kept", O_WRONLY | O_CREAT)
        yield from sys.write(fd, 12_345)
        yield from sys.close(fd)

    k, _ = run_body(body, fs_blocks=1 << 15, fs_inodes=1024)
    store = dict(k.disk.store)
    r = run_scenario(RunConfig(scenario="stream", duration_s=1, image=(store, 1 << 15),
                               kernel={"disk": "ssd"}))
    assert r.kernel.cfg.fs_blocks == 1 << 15 and r.kernel.cfg.fs_inodes == 1024
    assert stat_size(r.kernel, "/kept") == 12_345
    bad = dict(store)
    sb = Superblock.unpack(bad[0])
    sb.free_blocks += 7
    bad[0] = sb.pack()
    with pytest.raises(InputError, match="fsck finds 1 problem"):
        run_scenario(RunConfig(scenario="stream", duration_s=1, image=(bad, 1 << 15)))


def _populated(tmp: Path) -> tuple[dict[int, Any], Any]:
    """An image with /d holding 120 files and a 20,000-byte /big (unmounted cleanly)."""
    from sysharness import run_body

    from vfslab.kern.fcntl import O_CREAT, O_WRONLY

    def body(sys: Any) -> Generator[Any, Any, None]:
        yield from sys.mkdir("/d", 0o755)
        for i in range(120):
            fd = yield from sys.open(f"/d/f{i}", O_WRONLY | O_CREAT)
            yield from sys.close(fd)
        fd = yield from sys.open("/big", O_WRONLY | O_CREAT)
        yield from sys.write(fd, 20_000)
        yield from sys.close(fd)

    k, _ = run_body(body, fs_blocks=NBLOCKS, fs_inodes=256)
    return dict(k.disk.store), k


def _inode_of(store: dict[int, Any], path: str) -> int:
    from vfslab.fs.fsck import scan_image

    sc = scan_image(store, NBLOCKS)
    ino = 2
    for part in path.strip("/").split("/"):
        ino = next(i for n, i in sc.entries[ino] if n == part)
    return ino


@pytest.mark.parametrize(("path", "size", "want"), [
    ("/d", 0, "size 0"), ("/d", 100, "size 100"), ("/d", 2**64 - 1, "size 18446744073709551615"),
    ("/big", 2**63, "beyond the largest file"),
])
def test_a_size_the_block_map_cannot_hold_is_set_from_the_blocks(
        tmp_path: Path, path: str, size: int, want: str) -> None:
    from vfslab.fs.fsck_repair import read_dinode, repair_image, write_dinode

    store, _k = _populated(tmp_path)
    sb = Superblock.unpack(store[0])
    ino = _inode_of(store, path)
    d = read_dinode(store, sb, ino)
    good = d.size
    d.size = size
    write_dinode(store, sb, ino, d)
    problems = fsck_image(store, NBLOCKS)
    assert any(want in p for p in problems), problems
    repairs = repair_image(store, NBLOCKS)
    assert any(f"inode {ino}: size {size} set to" in r for r in repairs), repairs
    assert fsck_image(store, NBLOCKS) == []
    # a directory gets its blocks' length back (all 120 names visible again); a file the
    # end of its last block (20,000 bytes were 5 blocks: the byte count itself is gone)
    assert read_dinode(store, sb, ino).size == (good if path == "/d" else 5 * 4096)
    assert _takes_files(store)


def test_a_root_inode_block_out_of_range_is_cleared_not_the_root(tmp_path: Path) -> None:
    from vfslab.fs.fsck_repair import read_dinode, repair_image, write_dinode

    store: dict[int, Any] = {}
    sb = mkfs(store, NBLOCKS, 256)
    d = read_dinode(store, sb, 2)
    d.db[3] = NBLOCKS + 99
    write_dinode(store, sb, 2, d)
    repairs = repair_image(store, NBLOCKS)
    assert f"inode 2: block {NBLOCKS + 99} out of range, pointer cleared" in repairs
    assert fsck_image(store, NBLOCKS) == []
    assert _takes_files(store)
