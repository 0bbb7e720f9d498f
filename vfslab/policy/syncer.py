"""The 2004 syncer as a policy: sched_sync flushes whole files after a static delay."""

from __future__ import annotations

from vfslab.policy.base import Tunable, WritebackPolicy


class SyncerPolicy(WritebackPolicy):
    name = "syncer"
    TUNABLES = (
        Tunable("syncdelay", int, 30, "seconds a dirty vnode waits on the wheel (filedelay)",
                unit="s", min=1, max=30),
    )

    def start(self) -> None:
        syncer = self.k.syncer
        d = self.opts["syncdelay"]
        syncer.syncdelay = d
        syncer.filedelay = d
        syncer.dirdelay = max(1, d - 1)
        syncer.metadelay = max(1, d - 2)
        syncer.start()

    def window_s(self) -> float:
        """A file's pages wait filedelay (syncdelay) on the wheel, plus a slot; the lazy fsync
        that writes them leaves the inode update (the new block pointers and size) a delayed
        write on the device vnode, which waits metadelay more: appended data is reachable on
        disk only then (found by the crash tests: 31 s was promised, 59 s is what 2.0 did)."""
        d = self.opts["syncdelay"]
        return float(d + max(1, d - 2) + 1)
