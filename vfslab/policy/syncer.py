"""The 2004 syncer as a policy: sched_sync flushes whole files after a static delay
(vfs_syncer.py), beside ffs_write's write-behind of completed 64 KiB chunks."""

from __future__ import annotations

from typing import Any

from vfslab.errors import InputError
from vfslab.policy.base import Tunable, WritebackPolicy


class SyncerPolicy(WritebackPolicy):
    name = "syncer"
    # sysctl vfs.sync.delay / filedelay / dirdelay / metadelay; unset: the machine's (30, 30,
    # 15, 10 as sync_subr.c, or a scenario's [machine] values)
    TUNABLES = (
        Tunable("syncdelay", int, None, "seconds before a synced vnode is synced again",
                unit="s", min=0, max=30),
        Tunable("filedelay", int, None, "seconds a dirty file waits on the wheel", unit="s",
                min=0, max=30),
        Tunable("dirdelay", int, None, "seconds a dirty directory waits", unit="s", min=0,
                max=30),
        Tunable("metadelay", int, None, "seconds the device vnode's metadata waits", unit="s",
                min=0, max=30),
    )

    @classmethod
    def check_options(cls, opts: dict[str, Any]) -> None:
        for key, val in opts.items():
            if val is not None and not isinstance(val, int):
                raise InputError(f"syncer.{key}: expected an integer, got {val!r}")

    def start(self) -> None:
        syncer = self.k.syncer
        for key in ("syncdelay", "filedelay", "dirdelay", "metadelay"):
            if self.opts[key] is not None:
                setattr(syncer, key, self.opts[key])
        syncer.start()

    def window_s(self) -> float:
        """A file's pages wait filedelay on the wheel (at most syncer_maxdelay - 2), plus a
        slot; the lazy fsync that writes them leaves the inode update (the new block pointers
        and size) a delayed write on the device vnode, which waits metadelay more: appended
        data is reachable on disk only then (found by the crash tests). 30 + 10 + 1 = 41 s
        with NetBSD's delays."""
        s = self.k.syncer
        cap = s.syncer_maxdelay - 2
        return float(min(s.filedelay, cap) + min(s.metadelay, cap) + 1)
