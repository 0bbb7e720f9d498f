"""The file system: a small FFS-like file system on the emulated disk."""

from vfslab.sim import stack as _stack

# FFS's vfsops are dispatch (VFS_ROOT, VFS_SYNC, ...), adding no function of their own; the
# rest are vfslab's helpers, with no function of that name in 2.0 (a report marks them)
_stack.hide_frames("FfsVfsOps.mountroot", "FfsVfsOps.root", "FfsVfsOps.sync",
                   "FfsVfsOps.unmount")
_stack.mark_frames("helper", "bmap_lbn", "bmap_run", "indir_ptrs", "maxlbn", "meta_read",
                   "meta_write", "set_ptrs", "write_indir", "ffs_vnew", "ufs_getindir")
