"""The lock and IPL protocol validator (lockdep/WITNESS/Eraser for the emulated kernel)."""
