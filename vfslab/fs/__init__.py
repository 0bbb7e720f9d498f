"""The file system: a small FFS-like file system on the emulated disk."""
