"""The emulated NetBSD 2.0 kernel: one module per NetBSD source file it models."""
