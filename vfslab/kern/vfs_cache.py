"""The name cache (sys/kern/vfs_cache.c, NetBSD 2.0): (directory vnode, name) -> vnode, or a
negative entry saying the name is not there, kept LRU up to `desiredvnodes` entries.

cache_lookup returns -1 on a miss (the caller scans the directory), 0 on a hit with the vnode
referenced and locked (vget LK_EXCLUSIVE; the parent unlocked unless LOCKPARENT and ISLASTCN,
PDIRUNLOCK saying so), or ENOENT for a negative hit. A hit whose vnode was recycled while vget
slept (its capability v_vid changed) is a miss, as nchstats' false hits are. An entry is
dropped, not used, when the lookup says not to cache (MAKEENTRY clear: DELETE, RENAME) and a
negative entry when the caller is about to create the name.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vfslab.kern.lock import LK_EXCLUSIVE
from vfslab.kern.vnode import VNL_CHILD

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.vfs_lookup import componentname
    from vfslab.kern.vnode import vnode

ENOENT = 2
NCHNAMLEN = 31            # longer names are not cached (2.0's namecache entries hold 31)


@dataclass(slots=True)
class NchStats:
    """struct nchstats."""

    goodhits: int = 0
    neghits: int = 0
    badhits: int = 0
    falsehits: int = 0
    miss: int = 0
    long: int = 0
    enters: int = 0


class NameCache:
    """The cache of one machine: key (dvp, dvp's capability, name) -> (vp or None, vp's
    capability)."""

    def __init__(self, k: Kernel, size: int) -> None:
        self.k = k
        self.size = max(1, size)
        self.entries: OrderedDict[tuple[vnode, int, str], tuple[vnode | None, int]] = \
            OrderedDict()
        self.by_vnode: dict[vnode, set[tuple[vnode, int, str]]] = {}
        self.stats = NchStats()

    def _remove(self, key: tuple[vnode, int, str]) -> None:
        vp, _ = self.entries.pop(key)
        for v in (key[0], vp):
            if v is not None:
                keys = self.by_vnode.get(v)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self.by_vnode[v]

    def cache_lookup(self, dvp: vnode, cnp: componentname
                     ) -> Generator[Any, Any, tuple[int, vnode | None]]:
        """(-1 miss | 0 hit | ENOENT negative hit, the vnode): see the module docstring."""
        from vfslab.kern.vfs_lookup import ISDOTDOT, ISLASTCN, LOCKPARENT, MAKEENTRY, PDIRUNLOCK

        st = self.stats
        name = cnp.cn_nameptr
        if len(name) > NCHNAMLEN:
            st.long += 1
            cnp.cn_flags &= ~MAKEENTRY
            return -1, None
        key = (dvp, dvp.v_vid, name)
        ent = self.entries.get(key)
        if ent is None:
            st.miss += 1
            return -1, None
        if not cnp.cn_flags & MAKEENTRY:
            st.badhits += 1
            self._remove(key)
            return -1, None
        vp, vid = ent
        if vp is None:
            if cnp.cn_nameiop != 1 or not cnp.cn_flags & ISLASTCN:     # not CREATE
                st.neghits += 1
                self.entries.move_to_end(key)
                return ENOENT, None
            self._remove(key)                   # about to be created
            return -1, None
        vfs = self.k.vfs
        if vp is dvp:                           # "."
            vfs.vref(dvp)
            err = 0
        elif cnp.cn_flags & ISDOTDOT:
            yield from vfs.vn_unlock(dvp)
            cnp.cn_flags |= PDIRUNLOCK
            err = yield from vfs.vget(vp, LK_EXCLUSIVE)
            if not err and cnp.cn_flags & LOCKPARENT and cnp.cn_flags & ISLASTCN:
                err = yield from vfs.vn_lock(dvp, LK_EXCLUSIVE | VNL_CHILD)
                if err:
                    yield from vfs.vput(vp)
                    return err, None
                cnp.cn_flags &= ~PDIRUNLOCK
        else:
            err = yield from vfs.vget(vp, LK_EXCLUSIVE | VNL_CHILD)
            if err or not (cnp.cn_flags & LOCKPARENT and cnp.cn_flags & ISLASTCN):
                yield from vfs.vn_unlock(dvp)
                cnp.cn_flags |= PDIRUNLOCK
        if err or vid != vp.v_vid:
            if not err:
                yield from vfs.vput(vp)
                st.falsehits += 1
            else:
                st.badhits += 1
            if cnp.cn_flags & PDIRUNLOCK:        # VOP_LOOKUP must get its parent back locked
                e = yield from vfs.vn_lock(dvp, LK_EXCLUSIVE)
                if e:
                    return e, None
                cnp.cn_flags &= ~PDIRUNLOCK
            return -1, None
        st.goodhits += 1
        if key in self.entries:
            self.entries.move_to_end(key)
        return 0, vp

    def cache_enter(self, dvp: vnode, vp: vnode | None, cnp: componentname) -> None:
        """Remember that `cnp`'s name in dvp is vp (None: that it is not there)."""
        name = cnp.cn_nameptr
        if len(name) > NCHNAMLEN:
            return
        key = (dvp, dvp.v_vid, name)
        if key in self.entries:
            self._remove(key)
        if len(self.entries) >= self.size:
            self._remove(next(iter(self.entries)))
        self.entries[key] = (vp, vp.v_vid if vp is not None else 0)
        self.stats.enters += 1
        for v in (dvp, vp):
            if v is not None:
                self.by_vnode.setdefault(v, set()).add(key)

    def cache_purge(self, vp: vnode) -> None:
        """Forget every entry naming vp or naming a name in it (vclean, rmdir, rename)."""
        for key in list(self.by_vnode.get(vp, ())):
            if key in self.entries:
                self._remove(key)
        self.by_vnode.pop(vp, None)

    def cache_purge_name(self, dvp: vnode, name: str) -> None:
        """Forget one name of dvp (a failed directory write leaves the disk without it)."""
        key = (dvp, dvp.v_vid, name)
        if key in self.entries:
            self._remove(key)
