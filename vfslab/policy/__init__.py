"""Writeback policies behind one small interface (base.WritebackPolicy), chosen by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.policy.base import WritebackPolicy

# name -> "module:class"
POLICIES: dict[str, str] = {
    "syncer": "vfslab.policy.syncer:SyncerPolicy",
    "trickle": "vfslab.policy.trickle:TricklePolicy",
    "linux": "vfslab.policy.linux:LinuxPolicy",
}


def policy_class(name: str) -> type[WritebackPolicy]:
    import importlib

    from vfslab.errors import InputError

    spec = POLICIES.get(name)
    if spec is None:
        raise InputError(f"unknown policy {name!r}: expected one of {', '.join(POLICIES)}")
    mod, _, cls = spec.partition(":")
    try:
        factory: type[WritebackPolicy] = getattr(importlib.import_module(mod), cls)
    except ModuleNotFoundError as e:
        raise InputError(f"policy {name!r} is not available in this build ({e})") from e
    return factory


def make_policy(name: str, k: Kernel, options: dict[str, Any]) -> WritebackPolicy:
    return policy_class(name)(k, options)
