"""struct vnode and struct uvm_object (sys/sys/vnode.h, uvm/uvm_object.h, NetBSD 2.0).

The guard table below is vnode.h's own comment, made checkable: "v_flag, v_usecount, v_holdcnt
... are locked by the v_interlock simple lock; v_freelist by vnode_free_list_slock", and the
fields the mail names as guarded by splbio alone: v_dirtyblkhd, v_cleanblkhd, v_synclist.
In 2.0 `v_interlock` is `v_uobj.vmobjlock` (a #define): here both names point at one lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vfslab.kern.guards import declare_guards
from vfslab.kern.lock import declare_subclass, lock, simplelock

if TYPE_CHECKING:
    from vfslab.kern.buf import buf
    from vfslab.kern.uvm_page import vm_page

# The orders among vnode locks that 2.0's code keeps, as lockdep nesting subclasses
# (kern/lock.py's LK_NESTED): the validator reports two vnode locks held at once unless the
# second was taken in one of these roles. lookup() resets a child to no role once the
# directory above it is released (lock coupling: it is the next step's directory).
# - a vnode locked while a directory that names it (or that it is being entered in) is held:
#   lookup's child (ufs_lookup, cache_lookup, and ".."'s relock of the directory it came
#   from), a new or newly read inode under its directory (ufs_ihashins), ufs_link's file.
#   Directories before what they name: the ".." step unlocks its directory first.
VNL_CHILD = declare_subclass(1, "child")
# - the lock of a vnode no one references: vrele's lock for VOP_INACTIVE and vclean's drain.
#   No thread holds such a vnode locked while it waits for another vnode lock.
VNL_UNREF = declare_subclass(2, "unreferenced")
# - ufs_rename's source, locked with the target directory and target held (2.0's order; a
#   race 2.0 is known for, not one vfslab declares safe: the annotation names the order)
VNL_RENAME = declare_subclass(3, "rename-source")

# v_type
VNON, VREG, VDIR, VBLK, VCHR, VLNK, VSOCK, VFIFO, VBAD = range(9)
VTYPE_NAMES = ("VNON", "VREG", "VDIR", "VBLK", "VCHR", "VLNK", "VSOCK", "VFIFO", "VBAD")

# v_flag (sys/sys/vnode.h)
VROOT = 0x0001
VTEXT = 0x0002
VSYSTEM = 0x0004
VISTTY = 0x0008
VEXECMAP = 0x0010
VXLOCK = 0x0100
VXWANT = 0x0200
VBWAIT = 0x0400
VALIASED = 0x0800
VDIROP = 0x1000
VLAYER = 0x2000
VONWORKLST = 0x4000
VDIRTY = 0x8000

# v_freelist: which list the vnode is on (TAILQ membership in C)
ON_NO_LIST = 0
ON_FREE_LIST = 1
ON_HOLD_LIST = 2


@declare_guards(
    "uvm_object",
    {"memq": "vmobjlock", "uo_npages": "vmobjlock"},
    containers=("memq",),
)
class uvm_object:  # noqa: N801
    """struct uvm_object: a vnode's pages. memq maps page index -> page (the TAILQ and hash)."""

    __slots__ = ("vmobjlock", "memq", "uo_npages", "dirtyq", "vp", "__weakref__")

    def __init__(self, vmobjlock: simplelock, vp: vnode) -> None:
        self.vmobjlock = vmobjlock
        self.memq: dict[int, vm_page] = {}
        self.uo_npages = 0
        # Dirty pages in the order they were dirtied (for writeback policies): page -> None.
        self.dirtyq: dict[vm_page, None] = {}
        self.vp = vp


@declare_guards(
    "vnode",
    {
        "v_flag": "v_interlock",
        "v_usecount": "v_interlock",
        "v_holdcnt": "v_interlock",
        "v_numoutput": "global_v_numoutput_slock+splbio",
        "v_dirtyblkhd": "splbio",
        "v_cleanblkhd": "splbio",
        "v_synclist": "splbio",
        "v_freelist": "vnode_free_list_slock",
    },
    containers=("v_dirtyblkhd", "v_cleanblkhd"),
)
class vnode:  # noqa: N801
    """struct vnode."""

    __slots__ = ("v_id", "v_type", "v_flag", "v_usecount", "v_holdcnt", "v_writecount",
                 "v_numoutput", "v_interlock", "v_lock", "v_uobj", "v_size", "v_dirtyblkhd",
                 "v_cleanblkhd", "v_synclist", "v_freelist", "v_mount", "v_data",
                 "v_specmountpoint", "v_tag", "v_proto", "v_dirtied_at", "v_op", "v_vid",
                 "g_dirtygen", "g_glock", "__weakref__")

    def __init__(self, v_id: int) -> None:
        self.v_id = v_id
        self.v_type = VNON
        self.v_flag = 0
        self.v_usecount = 0
        self.v_holdcnt = 0
        self.v_writecount = 0
        self.v_numoutput = 0
        self.v_interlock = simplelock("v_interlock")
        self.v_lock = lock("vnlock", "vnlock")
        self.v_uobj = uvm_object(self.v_interlock, self)
        self.v_size = 0
        # LIST heads: insertion-ordered dicts (buf -> None) give O(1) insert and remove.
        self.v_dirtyblkhd: dict[buf, None] = {}
        self.v_cleanblkhd: dict[buf, None] = {}
        self.v_synclist = -1          # the syncer wheel slot it is linked on, -1 for none
        self.v_freelist = ON_NO_LIST
        self.v_mount: Any = None
        self.v_data: Any = None       # the inode
        self.v_specmountpoint: Any = None
        self.v_tag = ""
        # the locking protocol's own per-vnode state (Protocol.vnode_state), as v_data is
        # the file system's: a protocol adds locks and fields here, not to struct vnode
        self.v_proto: Any = None
        self.v_op: Any = None         # the vnode-operations vector of its file system (vnodeops)
        # the capability number (2.0's v_id): changes when the vnode is recycled, so that a
        # name-cache entry made before is recognised as stale
        self.v_vid = 0
        self.v_dirtied_at = -1        # when it last went from clean to dirty (policies, metrics)
        # struct genfs_node's g_dirtygen (the genfs node heads the inode in NetBSD; kept here
        # so that every file system has it): bumped under the object lock by a fault for
        # writing, only with `genfs.pr24596_fix` (the 2004 code had no such counter)
        self.g_dirtygen = 0
        # struct genfs_node's g_glock ("glock", a lockmgr lock; kept here with g_dirtygen):
        # serialises a file's block allocation (GOP_ALLOC, exclusive) against genfs_getpages'
        # block mapping and reads (shared)
        self.g_glock = lock("g_glock", "glock")

    def __repr__(self) -> str:
        return f"<vnode {self.v_id} {VTYPE_NAMES[self.v_type]}>"
