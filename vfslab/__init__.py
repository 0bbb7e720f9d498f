"""vfslab: a deterministic emulator of a BSD kernel's storage path.

Kernel engineers use it to test a writeback policy and a locking protocol before writing C.
"""

__version__ = "0.1.0"
