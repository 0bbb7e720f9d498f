"""The emulated NetBSD 2.0 kernel: one module per NetBSD source file it models."""

from vfslab.sim import stack as _stack

# The kernel's functions appear in call chains; the protocol plumbing between a kernel
# function and the lock it takes does not (a report shows brelvp -> holdrele -> simple_lock).
_stack.register_kernel_modules("vfslab.kern")
_stack.hide_frames(
    "vi_lock", "vi_unlock", "vi_trylock", "vi_sleep", "hold_lock", "hold_unlock",
    "buflist_lock", "buflist_unlock", "synclist_lock", "synclist_unlock", "freelist_lock",
    "freelist_unlock", "holdrele_from_brelvp", "maybe_leave_worklist_locked",
    # the protocol's page-queue decision, between uvm_lock_pageq and its simple_lock
    "pageq_lock", "pageq_unlock",
)
# Frames of the kernel that are not functions of NetBSD 2.0 (a report marks them, so that a
# reader looking for them in the C knows not to): vfslab's own helpers, a system call's
# user-side stub and the process's entry (the program), and where a context begins.
_stack.mark_frames(
    "helper", "biodone_work", "numoutput_incr", "waitforoutput", "Genfs.putpages", "Ubc.read",
    "Ubc.write", "set_rootvnode", "release_rootvnode", "vfs_remountroot", "update_inode",
    "add_if_absent", "bget", "bbusy", "btrybusy", "holdrelel", "mount_syncer",
    "sys_mmap_write", "sys_msync",
)
# a protocol's decisions (vfslab/kern/protocol*.py): under netbsd-2.0 what 2.0 did inline at
# that point of its caller, under a fix the fix's own code
_stack.mark_modules("protocol", "vfslab.kern.protocol")
_stack.mark_frames("program", "ProcSyscalls.*", "_start.<locals>.main")
_stack.mark_frames("context", "kernel_main.<locals>.init")
