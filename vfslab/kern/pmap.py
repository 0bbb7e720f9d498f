"""The machine-dependent page map as the file-page paths see it (pmap(9) of NetBSD 2.0): each
page's modified bit, and whether its existing mappings still allow a store without a fault.

A store through a writable mapping (a UBC window that ubc_release left mapped, a process's
shared mapping) is the MMU's business: it sets the page's modified bit and the kernel is not
told. The kernel learns of it only by asking (`pmap_is_modified`, `pmap_clear_modify`:
genfs_putpages, the page daemon) or by a fault, which a store takes only where no writable
mapping exists: on a page not mapped yet, or after `pmap_page_protect` took write permission
(or every mapping) away. A fault for writing goes through VOP_GETPAGES, which dirties the page
in the kernel's own accounting (PG_CLEAN off, the object's dirty list) and puts the vnode on
the syncer's worklist.

A mapping is not an object here: whoever maps a page records the page and its `prot_gen`,
and the mapping still allows stores without a fault while the page is the one at that offset
and its `prot_gen` is unchanged; `pmap_page_protect` (either protection) bumps it, which is
what removing or write-protecting every mapping of the page does to a later store.

The pages whose modified bit is set while they are PG_CLEAN, dirty without the kernel knowing,
are kept in the order they became so (`unknown`): PR kern/24596's third problem, measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vfslab.kern.uvm_page import PG_CLEAN, vm_page

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel

VM_PROT_NONE = 0x0
VM_PROT_READ = 0x1
VM_PROT_WRITE = 0x2


class Pmap:
    """pmap_is_modified / pmap_clear_modify / pmap_page_protect for the machine's pages."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        # pages modified through a mapping while PG_CLEAN -> when that first happened
        self.unknown: dict[vm_page, int] = {}
        self.stores = 0               # stores through an existing writable mapping
        self.protects = 0
        self.dirtied = 0              # clean pages made dirty by a store the kernel missed
        self.relisted = 0             # of which the kernel counted dirty later (a fault)

    def store(self, pg: vm_page, now: int) -> None:
        """A CPU store through a writable mapping: the modified bit, nothing else."""
        self.stores += 1
        if not pg.pmap_mod:
            pg.pmap_mod = True
            if pg.flags & PG_CLEAN:
                self.unknown[pg] = now
                self.dirtied += 1
                for f in self.k.notify.unknown_dirty:
                    f(pg, True, now)

    def pmap_is_modified(self, pg: vm_page) -> bool:
        return pg.pmap_mod

    def pmap_clear_modify(self, pg: vm_page) -> bool:
        """Clear the modified bit; True if it was set."""
        if not pg.pmap_mod:
            return False
        pg.pmap_mod = False
        self._known(pg)
        return True

    def pmap_page_protect(self, pg: vm_page, prot: int) -> None:
        """Take write permission (VM_PROT_READ) or every mapping (VM_PROT_NONE) away from
        the page: the next store through any mapping of it faults."""
        self.protects += 1
        pg.prot_gen += 1

    def known(self, pg: vm_page) -> None:
        """The kernel now counts the page dirty (PG_CLEAN off): not a second dirtying."""
        if pg.pmap_mod and self._known(pg):
            self.relisted += 1

    def page_freed(self, pg: vm_page) -> None:
        """uvm_pagefree: pmap_page_protect(VM_PROT_NONE) and the bit with the page."""
        pg.prot_gen += 1
        if pg.pmap_mod:
            pg.pmap_mod = False
            self._known(pg)

    def _known(self, pg: vm_page) -> bool:
        """The page is no longer dirty unknown to the kernel; True if it was."""
        if self.unknown.pop(pg, None) is None:
            return False
        for f in self.k.notify.unknown_dirty:
            f(pg, False, self.k.m.time())
        return True

    def oldest_unknown_ns(self) -> int:
        """When the oldest page dirty without the kernel knowing became so (-1 if none)."""
        for t in self.unknown.values():
            return t
        return -1
