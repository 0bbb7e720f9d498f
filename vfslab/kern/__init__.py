"""The emulated NetBSD 2.0 kernel: one module per NetBSD source file it models."""

from vfslab.sim import stack as _stack

# The kernel's functions appear in call chains; the protocol plumbing between a kernel
# function and the lock it takes does not (a report shows brelvp -> holdrele -> simple_lock).
_stack.register_kernel_modules("vfslab.kern")
_stack.hide_frames(
    "vi_lock", "vi_unlock", "vi_trylock", "vi_sleep", "hold_lock", "hold_unlock",
    "buflist_lock", "buflist_unlock", "synclist_lock", "synclist_unlock", "freelist_lock",
    "freelist_unlock", "holdrele_from_brelvp", "maybe_leave_worklist_locked",
)
