"""The locking protocols by spec: `--protocol netbsd-2.0|splbio-always|split-interlock|
biodoned`, an installed entry point, `module:Class` or `file.py:Class` (vfslab.plugins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vfslab.plugins import BUILTIN

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.kern.protocol import Protocol

PROTOCOLS: dict[str, str] = BUILTIN["protocol"]


def protocol_class(spec: str) -> type[Protocol]:
    from vfslab.plugins import resolve

    cls: type[Protocol] = resolve("protocol", spec)
    return cls


def make_protocol(spec: str, k: Kernel) -> Protocol:
    return protocol_class(spec)(k)
