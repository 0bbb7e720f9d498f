"""The loss report of one crash: what the workload wrote against what the (repaired) disk
holds, page by page.

For each page the journal knows, the disk holds a version (the stamp's sequence number in the
block the on-disk inode maps the page to, 0 if none, the older half's if torn). The page's
writes newer than that are lost; the oldest of them says how long the data had been at risk
(its age at the crash). If a completed fsync covered a write newer than the disk's version, a
promise was broken: that is a bug, counted in `fsync_bytes_lost`. A page is 4 KiB of loss
(vfslab tracks versions a page at a time). A block holding another file's data is "stale":
FFS without soft updates can expose it after a crash (the inode reached the disk before the
data), a privacy leak rather than a loss.

A writeback policy's promise is the one it can keep: everything dirtied is written out (handed
to the disk) within window + one daemon period, as the syncer's delays and Linux's
dirty_expire_centisecs are defined. Whether the disk has written it by then is the disk's
doing: a disk slower than the dirtying keeps data in its queue past the bound unless the
writers are held to its rate (trickle does not hold them: the designs tried and measured are in
docs/model.md, Crashes). So a page lost older than the bound is `late` (the
promise broken) only if no write of its block was queued within the bound and no failed write
explains it; the others are reported by where the data was.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from vfslab.crash.image import Cutter
from vfslab.crash.journal import FileState, JournalState
from vfslab.dev.wd import Torn
from vfslab.fs.fsck import IFMT, IFREG, Scan, file_blocks
from vfslab.fs.fsck_repair import read_dinode
from vfslab.fs.ufs_layout import BITS, INOPB, NDADDR, NINDIR, ROOTINO, Superblock

NS = 1_000_000_000
PAGE = 4096
MAX_LISTED = 20
DROPPED_CAUSE = "a failed write dropped it (uvm.write_error=drop)"
EARLY_CAUSE = ("no page write of it failed: the fsync returned before it, or the block "
               "pointers that reach it, was on disk")
RECYCLED_CAUSE = ("a write of it failed and its vnode was recycled before an fsync: vclean's "
                  "flush took the error and 2.0 threw it away with what was left dirty, so "
                  "no program was told")
REUSED_CAUSE = ("a bitmap block's write failed, a block of the file was given out again, and "
                "fsck cleared the file for the duplicate (2.0's brelse threw the bitmap away; "
                "no fsync is told of a bitmap)")
REPORTED_CAUSE = ("an fsync of it returned an error after it was written: the program was told, "
                  "and a later fsync's 0 does not promise it again (as on Linux, whose errseq "
                  "reports a failed writeback once)")
# losses older than the promise that nothing else explains ("written late"), by cause
PR2_CAUSE = "its vnode was off the syncer's wheel (PR kern/24596, problem 2)"
PR3_CAUSE = ("modified through a mapping while the kernel counted it clean "
             "(PR kern/24596, problem 3)")
LATE_CAUSE = "none found: the policy did not write it out in time"


@dataclass
class LossReport:
    crash_s: float                 # when, seconds after the workload started
    window_s: float                # the policy's promised bound on dirty age
    bound_s: float                 # window plus one daemon period: what a crash may lose
    fsync_bytes_lost: int = 0      # promised, lost, and never an error said so: must be 0
    # promised by a later fsync, lost, and an fsync returned an error after it was written
    fsync_bytes_lost_reported: int = 0
    lost_bytes: int = 0
    lost_pages: int = 0
    files_with_loss: int = 0
    max_lost_age_s: float = 0.0
    over_bound_bytes: int = 0      # lost bytes dirtied more than bound_s before the crash
    # of those, the bytes whose block had been queued to the disk (a write of it given to the
    # driver) within bound_s of the lost write: the policy wrote them out in time, and at the
    # crash that write was still in the disk's queue (or in service), or had failed
    over_bound_queued_bytes: int = 0
    over_bound_failed_bytes: int = 0
    # ... and, of the rest, the bytes an fsync of the file reported an error for after the
    # lost write (the write that failed was not the page's own: its block pointers')
    over_bound_reported_bytes: int = 0
    # ... and, of the rest, the bytes whose inode block or an indirect block on the way to
    # them had a write fail after the lost write, or whose last write before the crash failed
    # (2.0's brelse throws a failed delayed write away, and the pointers with it)
    over_bound_meta_failed_bytes: int = 0
    # ... and the rest: not written out within the bound, no failed write to explain it: the
    # policy broke its promise
    over_bound_late_bytes: int = 0
    # those by cause: where the 2004 syncer could not see the page (PR kern/24596's problems
    # 2 and 3: PR2_CAUSE, PR3_CAUSE), else LATE_CAUSE
    late_causes: dict[str, int] = field(default_factory=dict)
    stale_blocks: int = 0
    fsync_losses: list[dict[str, Any]] = field(default_factory=list)   # the first few
    # fsync'd bytes lost by cause: DROPPED_CAUSE when a failed write dropped the promised
    # version (uvm.write_error=drop, 2.0), EARLY_CAUSE when no page write of it failed (a
    # failed metadata write that fsync did not report is one way: ffs_fsync's asynchronous
    # metadata writes lose their errors), RECYCLED_CAUSE when the file's vnode was recycled
    # after the write and vclean's flush took an error no program heard of, REUSED_CAUSE when
    # fsck cleared the file for a block given out twice after a failed bitmap write,
    # REPORTED_CAUSE when an fsync said so (these bytes are in fsync_bytes_lost_reported,
    # not fsync_bytes_lost)
    fsync_loss_causes: dict[str, int] = field(default_factory=dict)
    oldest_losses: list[dict[str, Any]] = field(default_factory=list)
    late_losses: list[dict[str, Any]] = field(default_factory=list)   # the first few late

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(v: Any, ino: int) -> tuple[int, bool]:
    """(sequence number of the data a block holds for `ino`, whether it holds another's)."""
    if isinstance(v, int):
        if v & 0xFFFFFF == ino:
            return v >> 24, False
        return 0, v != 0
    if isinstance(v, Torn):
        a, fa = _version(v.old, ino)
        b, fb = _version(v.new, ino)
        return min(a, b), fa or fb
    return 0, isinstance(v, (bytes, bytearray))


def _pointer_blocks(image: dict[int, Any], sb: Superblock, ino: int, d: Any, pg: int
                    ) -> list[int]:
    """The blocks whose contents make page `pg` of inode `ino` reachable, as far as the image
    knows them: the inode's block, and the indirect blocks on the way (those the image's
    pointers name)."""
    out = [sb.itable_start + ino // INOPB]
    if pg < NDADDR:
        return out
    if pg < NDADDR + NINDIR:
        return out + ([d.ib] if d.ib else [])
    if not d.dib:
        return out
    out.append(d.dib)
    raw = image.get(d.dib)
    if isinstance(raw, (bytes, bytearray)) and len(raw) >= 4 * NINDIR:
        j = (pg - NDADDR - NINDIR) // NINDIR
        if j < NINDIR:
            mid = int.from_bytes(raw[4 * j:4 * j + 4], "little")
            if mid:
                out.append(mid)
    return out


def _holds_data(v: Any) -> bool:
    """Whether a block's content is file data (a version stamp), whole or torn."""
    if isinstance(v, Torn):
        return _holds_data(v.old) or _holds_data(v.new)
    return isinstance(v, int) and v != 0


def _bitmap_failed(cutter: Cutter, sb: Superblock, blocks: Iterable[int], t_crash: int
                   ) -> bool:
    """Whether a write of the bitmap block of any of `blocks` failed before the crash (the
    next allocation then read the disk's older bitmap: a block given out twice)."""
    return any(cutter.failed_between(sb.bmap_start + b // BITS, 0, t_crash) for b in blocks)


def _silent_cause(fs: FileState, pg: int, pseq: int, pwhen: int, cutter: Cutter | None,
                  sb: Superblock, dups: Iterable[int], t_crash: int) -> str:
    """Why a page fsync'd at version `pseq` (written at `pwhen`) was lost with no error told:
    a failed write dropped that version, or the file's vnode was recycled after it and
    vclean's flush failed, or fsck cleared the file for a block a failed bitmap write gave
    out twice; else no page write of it failed (EARLY_CAUSE)."""
    if fs.dropped.get(pg, 0) >= pseq:
        return DROPPED_CAUSE
    if any(pwhen <= t for t in fs.flush_failures):
        return RECYCLED_CAUSE
    if cutter is not None and _bitmap_failed(cutter, sb, dups, t_crash):
        return REUSED_CAUSE
    return EARLY_CAUSE


def _meta_failed(cutter: Cutter, image: dict[int, Any], sb: Superblock, ino: int, d: Any,
                 pg: int, blk: int, foreign: bool, written: int, t_crash: int,
                 dups: Iterable[int], flush_failures: list[int]) -> bool:
    """Whether a failed metadata write on the way to page `pg` (written at `written`)
    explains its loss, each found by the crash matrix with 3% write faults:
    - a write of its inode or indirect block failed since, or the last one before the crash
      did: 2.0's brelse threw the buffer away with the pointers or the inode's update, and
      nothing dirtied the block again (stream: trickle lost 769 MB beyond its promise that
      was this; smallfiles: an inode block's last write);
    - its data block holds another file's data, or its indirect block holds (or was written
      since with) file data, and a write of that block's bitmap block failed before the
      crash; or fsck cleared the file for a block claimed twice whose bitmap block failed a
      write: the next allocation read the disk's older bitmap and gave the block out again
      (stream: a file cleared for a duplicate block; protocol: an indirect block
      overwritten by another file's data);
    - vclean's flush of the recycled vnode failed after the page was written, and 2.0 threw
      away what was left dirty (the pages' new indirect pointers) and the error (protocol)."""
    ptrs = _pointer_blocks(image, sb, ino, d, pg)
    if any(cutter.failed_between(b, written, t_crash) or cutter.last_write_failed(b, t_crash)
           for b in ptrs):
        return True
    # blocks given out again: the data block holding another file's data, an indirect block
    # holding file data or written with some since (the inode table's block is not
    # allocated from the bitmap)
    reused = [b for b in ptrs[1:] if _holds_data(image.get(b))
              or cutter.written_as_data(b, written, t_crash)] + ([blk] if foreign else [])
    # (a failure at any time before the crash: the block was given out before it, and the
    # page may have been written to it again after it, as on protocol with the syncer)
    if _bitmap_failed(cutter, sb, reused, t_crash) or _bitmap_failed(cutter, sb, dups, t_crash):
        return True
    return any(written <= t for t in flush_failures)


def loss_report(state: JournalState, image: dict[int, Any], t_crash: int, t0: int,
                window_s: float, bound_s: float, paths: dict[int, str] | None = None,
                        cutter: Cutter | None = None,
                        dup_cleared: dict[int, set[int]] | None = None,
                        wheel: bool = False) -> LossReport:
    """Compare the journal at `t_crash` (already advanced there) with `image`. With
    the `cutter` of the disk's write log, a lost page older than the bound is looked up in it:
    if a write of its block was queued after the lost write and within the bound of it, it
    counts in over_bound_queued_bytes while that write is still queued or in service at the
    crash, in over_bound_failed_bytes if it failed. `dup_cleared` (fsck's: inode -> the
    duplicate blocks it was cleared for) explains a file's loss by a failed write of the
    bitmap block of one of those blocks. A loss still unexplained (written late) is put to
    PR kern/24596's account where the page was dirty unknown to the kernel at the crash, or,
    when the run's writeback walks the syncer's wheel (`wheel`), its vnode was off it."""
    rep = LossReport((t_crash - t0) / NS, window_s, bound_s)
    paths = paths or {}
    sb = Superblock.unpack(image.get(0))
    bound_ns = int(bound_s * NS)
    dups = dup_cleared or {}
    worst: list[tuple[int, int, int]] = []        # (age, ino, page)
    for ino, fs in state.files.items():
        if not fs.pages:
            continue
        d = read_dinode(image, sb, ino)
        blocks = file_blocks(image, ino) if d.mode & IFMT == IFREG else []
        nblk = len(blocks)
        lost_here = False
        for pg, evs in fs.pages.items():
            blk = blocks[pg] if pg < nblk else 0
            ds, foreign = _version(image.get(blk), ino) if blk else (0, False)
            if foreign:
                rep.stale_blocks += 1
            last_seq, _ = state.write_info(evs[-1])
            if ds >= last_seq:
                continue
            # the oldest write newer than the disk's version
            k = len(evs) - 1
            while k > 0 and state.write_info(evs[k - 1])[0] > ds:
                k -= 1
            written = state.write_info(evs[k])[1]
            age = t_crash - written
            rep.lost_pages += 1
            rep.lost_bytes += PAGE
            lost_here = True
            if age > bound_ns:
                rep.over_bound_bytes += PAGE
                qs = cutter.queued.get(blk) if cutter is not None and blk else None
                fate = ""
                if cutter is not None and qs:
                    i = bisect_left(qs, written)
                    if i < len(qs) and qs[i] < t_crash and qs[i] - written <= bound_ns:
                        fate = cutter.fate(blk, qs[i], t_crash)
                        if fate == "queued":
                            rep.over_bound_queued_bytes += PAGE
                        elif fate == "failed":
                            rep.over_bound_failed_bytes += PAGE
                if fate not in ("queued", "failed"):
                    if fs.error_told(pg, evs[k]):
                        rep.over_bound_reported_bytes += PAGE
                    elif cutter is not None and _meta_failed(
                            cutter, image, sb, ino, d, pg, blk, foreign, written, t_crash,
                            dups.get(ino, ()), fs.flush_failures):
                        rep.over_bound_meta_failed_bytes += PAGE
                    else:
                        rep.over_bound_late_bytes += PAGE
                        cause = PR3_CAUSE if pg in fs.unknown else \
                            PR2_CAUSE if wheel and not fs.on_wheel else LATE_CAUSE
                        rep.late_causes[cause] = rep.late_causes.get(cause, 0) + PAGE
                        if len(rep.late_losses) < MAX_LISTED:
                            rep.late_losses.append({"ino": ino, "path": paths.get(ino),
                                                    "page": pg, "age_s": age / NS})
            worst.append((age, ino, pg))
            mark = fs.promised_mark(pg)
            if mark and evs[0] < mark:
                j = len(evs) - 1
                while evs[j] >= mark:
                    j -= 1
                pseq, pwhen = state.write_info(evs[j])
                if pseq > ds:
                    # an error the program was told of (found by the crash tests: trickle's
                    # write of an indirect block failed, the next fsync said EIO, the program
                    # went on, and the fsync after that returned 0 for data whose block
                    # pointers had gone with the failed buffer); else the page's promised
                    # data went down with a failed write if a write of that version or a
                    # newer one was dropped
                    if fs.error_told(pg, evs[j]):
                        cause = REPORTED_CAUSE
                        rep.fsync_bytes_lost_reported += PAGE
                    else:
                        cause = _silent_cause(fs, pg, pseq, pwhen, cutter, sb,
                                              dups.get(ino, ()), t_crash)
                        rep.fsync_bytes_lost += PAGE
                    causes = rep.fsync_loss_causes
                    causes[cause] = causes.get(cause, 0) + PAGE
                    if len(rep.fsync_losses) < MAX_LISTED:
                        rep.fsync_losses.append({
                            "ino": ino, "path": paths.get(ino), "page": pg,
                            "fsynced_version": pseq, "disk_version": ds,
                            "written_s": (pwhen - t0) / NS, "cause": cause})
        if lost_here:
            rep.files_with_loss += 1
    if worst:
        worst.sort(reverse=True)
        rep.max_lost_age_s = worst[0][0] / NS
        rep.oldest_losses = [{"ino": ino, "path": paths.get(ino), "page": pg, "age_s": a / NS}
                             for a, ino, pg in worst[:5]]
    return rep


def paths_of(sc: Scan) -> dict[int, str]:
    """inode -> a path naming it in a checked image (for reports)."""
    out: dict[int, str] = {ROOTINO: "/"}
    stack = [ROOTINO]
    while stack:
        dino = stack.pop()
        for name, ino in sc.entries.get(dino, []):
            if name in (".", "..") or ino in out:
                continue
            out[ino] = out[dino].rstrip("/") + "/" + name
            if ino in sc.entries:
                stack.append(ino)
    return out
