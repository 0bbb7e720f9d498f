"""The 2004 syncer as a policy: sched_sync flushes whole files after a static delay."""

from __future__ import annotations

from typing import Any

from vfslab.policy.base import WritebackPolicy


class SyncerPolicy(WritebackPolicy):
    name = "syncer"
    OPTIONS: dict[str, tuple[type, Any, str]] = {
        "syncdelay": (int, 30, "seconds a dirty vnode waits on the wheel (filedelay)"),
    }

    def start(self) -> None:
        syncer = self.k.syncer
        d = self.opts["syncdelay"]
        syncer.syncdelay = d
        syncer.filedelay = d
        syncer.dirdelay = max(1, d - 1)
        syncer.metadelay = max(1, d - 2)
        syncer.start()

    def window_s(self) -> float:
        # a vnode is visited syncdelay seconds after it was queued, plus one wheel turn slack
        return float(self.opts["syncdelay"] + 1)
