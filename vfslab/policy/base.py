"""The writeback-policy interface: how dirty pages and buffers reach the disk.

A policy starts its daemons in `start`, and may throttle writers in `balance_dirty_pages`
(only called when `throttles` is True, so policies that do not throttle cost nothing).
The kernel tells it when buffers become dirty or clean; dirty pages it reads from the page
cache's own queues (uvm.dirty_objects, each object's dirtyq), in the order they were dirtied.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vfslab.errors import InputError

if TYPE_CHECKING:
    from vfslab.kern.buf import buf
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.vnode import vnode


class WritebackPolicy:
    name = "base"
    throttles = False
    # option name -> (type, default, help)
    OPTIONS: dict[str, tuple[type, Any, str]] = {}

    def __init__(self, k: Kernel, options: dict[str, Any]) -> None:
        self.k = k
        self.m = k.m
        self.opts = self.parse_options(options)

    @classmethod
    def parse_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        out = {name: default for name, (_, default, _) in cls.OPTIONS.items()}
        for key, val in options.items():
            if key not in cls.OPTIONS:
                raise InputError(f"{cls.name}: unknown option {key!r}; expected one of "
                                 f"{', '.join(sorted(cls.OPTIONS)) or '(none)'}")
            typ = cls.OPTIONS[key][0]
            try:
                out[key] = typ(val)
            except (TypeError, ValueError) as e:
                raise InputError(f"{cls.name}.{key}: expected {typ.__name__}, got {val!r}") from e
        return out

    def start(self) -> None:
        """Start the policy's daemons."""

    def window_s(self) -> float:
        """The promised bound on the age of dirty data, in seconds (for loss reports)."""
        return 0.0

    def period_s(self) -> float:
        """How often the policy's daemon wakes: data dirtied just after a pass waits this
        long more than the window (a crash may lose up to window + period)."""
        return 1.0

    def buf_dirtied(self, bp: buf) -> None:
        """A buffer became B_DELWRI (called at splbio)."""

    def buf_cleaned(self, bp: buf) -> None:
        """A B_DELWRI buffer was written or invalidated (called at splbio)."""

    def balance_dirty_pages(self, vp: vnode, npages: int) -> Generator[Any, Any, None]:
        """Throttle a writer that has just dirtied `npages` (only if `throttles`)."""
        yield from ()

    def update_inode(self, vp: vnode, since: int = -1) -> Generator[Any, Any, None]:
        """After writing a vnode's pages, write its inode (VOP_UPDATE): its block becomes a
        dirty buffer that the policy's buffer pass writes in turn. With `since` (when the
        oldest of those pages was dirtied) the block is dated back to then: the data is
        reachable on disk only once the inode block holding its pointers is there, so the
        promise on the data's age holds only if the block is due when the data is."""
        fs = self.k.fs_of(vp)
        if fs is None:
            return
        yield from fs.update_vnode(vp)
        if since >= 0:
            bp = fs.inode_buf(vp)
            if bp is not None:
                self.k.bio.bbackdate(bp, since)
