"""Interrupt priority levels, in NetBSD's order (spl(9)).

Only the order matters to the emulator: an interrupt at level L is taken while the CPU runs
below L, and held pending otherwise.
"""

from typing import Final

IPL_NONE: Final = 0
IPL_SOFTCLOCK: Final = 1
IPL_SOFTNET: Final = 2
IPL_BIO: Final = 3
IPL_NET: Final = 4
IPL_TTY: Final = 5
IPL_VM: Final = 6
IPL_AUDIO: Final = 7
IPL_CLOCK: Final = 8
IPL_HIGH: Final = 9

IPL_NAMES: Final[dict[int, str]] = {
    IPL_NONE: "IPL_NONE",
    IPL_SOFTCLOCK: "IPL_SOFTCLOCK",
    IPL_SOFTNET: "IPL_SOFTNET",
    IPL_BIO: "IPL_BIO",
    IPL_NET: "IPL_NET",
    IPL_TTY: "IPL_TTY",
    IPL_VM: "IPL_VM",
    IPL_AUDIO: "IPL_AUDIO",
    IPL_CLOCK: "IPL_CLOCK",
    IPL_HIGH: "IPL_HIGH",
}

# The spl(9) function that raises to each level, for reports ("splbio" rather than "IPL_BIO").
SPL_NAMES: Final[dict[int, str]] = {
    IPL_NONE: "spl0",
    IPL_SOFTCLOCK: "splsoftclock",
    IPL_SOFTNET: "splsoftnet",
    IPL_BIO: "splbio",
    IPL_NET: "splnet",
    IPL_TTY: "spltty",
    IPL_VM: "splvm",
    IPL_AUDIO: "splaudio",
    IPL_CLOCK: "splclock",
    IPL_HIGH: "splhigh",
}


def ipl_name(level: int) -> str:
    return IPL_NAMES.get(level, f"IPL_{level}")
