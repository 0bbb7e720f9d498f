"""Writeback policies behind one interface (base.WritebackPolicy), chosen by spec: a built-in
name, an installed entry point, `module:Class` or `file.py:Class` (see vfslab.plugins)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vfslab.plugins import BUILTIN

if TYPE_CHECKING:
    from vfslab.kern.init_main import Kernel
    from vfslab.policy.base import WritebackPolicy

# the built-in names (name -> "module:Class")
POLICIES: dict[str, str] = BUILTIN["policy"]


def policy_class(spec: str) -> type[WritebackPolicy]:
    from vfslab.plugins import resolve

    cls: type[WritebackPolicy] = resolve("policy", spec)
    return cls


def make_policy(spec: str, k: Kernel, options: dict[str, Any]) -> WritebackPolicy:
    return policy_class(spec)(k, options)
