"""The emulation engine: clock, event queue, kernel threads, IPLs and interrupts."""
