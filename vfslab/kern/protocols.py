"""The locking protocols by name: `--protocol netbsd-2.0|splbio-always|split-interlock|biodoned`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vfslab.errors import InputError

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.protocol import Protocol

PROTOCOLS: dict[str, str] = {
    "netbsd-2.0": "vfslab.kern.protocol:Protocol",
    "splbio-always": "vfslab.kern.protocol_fixes:SplbioAlways",
    "split-interlock": "vfslab.kern.protocol_fixes:SplitInterlock",
    "biodoned": "vfslab.kern.protocol_fixes:Biodoned",
}


def protocol_class(name: str) -> type[Protocol]:
    spec = PROTOCOLS.get(name)
    if spec is None:
        raise InputError(f"unknown protocol {name!r}: expected one of {', '.join(PROTOCOLS)}")
    mod, _, cls = spec.partition(":")
    try:
        cls_: type[Protocol] = getattr(importlib.import_module(mod), cls)
        return cls_
    except (ModuleNotFoundError, AttributeError) as e:
        raise InputError(f"protocol {name!r} is not available in this build ({e})") from e


def make_protocol(name: str, k: Kernel) -> Protocol:
    return protocol_class(name)(k)
