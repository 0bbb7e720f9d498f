"""Policies and protocols by name: built-in, installed, or the user's own.

A spec is one of
    a built-in name                 `syncer`, `trickle`, `linux`; `netbsd-2.0`, `biodoned`, ...
    an entry-point name             registered by an installed package under the group
                                    `vfslab.policies` or `vfslab.protocols`
    `package.module:Class`          importable from sys.path
    `path/to/file.py:Class`         a file anywhere (loaded once, as module `vfslab_user_<hash>`)

Every command resolves a spec the same way (run, compare, check, crashtest, sweep and its Ray
and Dask workers, report), so a user's class runs everywhere a built-in does. `canonical`
turns a file path into an absolute one, so that a worker in another directory or process
loads the same file.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal, TypeVar

from vfslab.errors import InputError

Kind = Literal["policy", "protocol"]

BUILTIN: dict[Kind, dict[str, str]] = {
    "policy": {
        "syncer": "vfslab.policy.syncer:SyncerPolicy",
        "trickle": "vfslab.policy.trickle:TricklePolicy",
        "linux": "vfslab.policy.linux:LinuxPolicy",
    },
    "protocol": {
        "netbsd-2.0": "vfslab.kern.protocol:Protocol",
        "splbio-always": "vfslab.kern.protocol_fixes:SplbioAlways",
        "split-interlock": "vfslab.kern.protocol_fixes:SplitInterlock",
        "biodoned": "vfslab.kern.protocol_fixes:Biodoned",
    },
}
GROUPS: dict[Kind, str] = {"policy": "vfslab.policies", "protocol": "vfslab.protocols"}
BASES: dict[Kind, str] = {"policy": "vfslab.policy.base:WritebackPolicy",
                          "protocol": "vfslab.kern.protocol:Protocol"}

T = TypeVar("T")

# the plug-ins resolved in this process: module -> (kind, spec), so that a failure can say
# whose code raised it (vfslab.failure)
_LOADED: dict[str, tuple[Kind, str]] = {}


def loaded_plugins() -> dict[str, tuple[Kind, str]]:
    """Each module of a user's policy or protocol resolved in this process -> (kind, spec)."""
    return dict(_LOADED)


def installed(kind: Kind) -> dict[str, str]:
    """Entry-point name -> `module:Class` of the installed plug-ins of a kind."""
    return {ep.name: ep.value for ep in entry_points(group=GROUPS[kind])}


def known_names(kind: Kind) -> list[str]:
    return [*BUILTIN[kind], *(n for n in installed(kind) if n not in BUILTIN[kind])]


def canonical(spec: str) -> str:
    """The spec with a file path made absolute (names and module paths unchanged)."""
    path, sep, cls = spec.rpartition(":")
    if sep and path.endswith(".py"):
        return f"{Path(path).expanduser().resolve()}:{cls}"
    return spec


def _load_file(path: str) -> object:
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise InputError(f"no such file {str(p)!r}")
    modname = "vfslab_user_" + hashlib.sha1(str(p).encode()).hexdigest()[:12]
    mod = sys.modules.get(modname)
    if mod is None:
        spec = importlib.util.spec_from_file_location(modname, p)
        if spec is None or spec.loader is None:
            raise InputError(f"{p}: cannot be loaded as a Python module")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        try:
            spec.loader.exec_module(mod)
        except InputError:
            del sys.modules[modname]
            raise
        except Exception as e:       # the user's module failed to import: say where
            del sys.modules[modname]
            raise InputError(f"{p}: importing it failed: {type(e).__name__}: {e}") from e
    return mod


def _target(kind: Kind, spec: str) -> str:
    if spec in BUILTIN[kind]:
        return BUILTIN[kind][spec]
    eps = installed(kind)
    if spec in eps:
        return eps[spec]
    if ":" in spec:
        return spec
    raise InputError(f"unknown {kind} {spec!r}: expected one of {', '.join(known_names(kind))}, "
                     f"a module:Class or a file.py:Class")


def resolve(kind: Kind, spec: str, selected: bool = True) -> type:
    """The class a spec names, checked to be a subclass of the kind's base. `selected`: it
    is to run (its overrides are checked, and its code is known as a plug-in's when a run
    fails), not only looked at for its declared settings."""
    target = _target(kind, spec)
    where, _, clsname = target.rpartition(":")
    if not where or not clsname:
        raise InputError(f"{kind} {spec!r}: expected module:Class or file.py:Class")
    if where.endswith(".py"):
        mod = _load_file(where)
    else:
        try:
            mod = importlib.import_module(where)
        except ModuleNotFoundError as e:
            raise InputError(f"{kind} {spec!r}: cannot import {where!r} ({e})") from e
        except InputError:
            raise
        except Exception as e:
            raise InputError(f"{kind} {spec!r}: importing {where!r} failed: "
                             f"{type(e).__name__}: {e}") from e
    cls = getattr(mod, clsname, None)
    if not isinstance(cls, type):
        raise InputError(f"{kind} {spec!r}: {where!r} has no class {clsname!r}")
    bmod, _, bname = BASES[kind].partition(":")
    base = getattr(importlib.import_module(bmod), bname)
    if not issubclass(cls, base):
        raise InputError(f"{kind} {spec!r}: {clsname} is not a subclass of {bname}")
    if selected and spec not in BUILTIN[kind] and not cls.__module__.startswith("vfslab."):
        _LOADED[cls.__module__] = (kind, spec)
        _check_overrides(kind, spec, cls, base)
    return cls


def _runs_as_generator(f: object) -> bool:
    """Does the kernel run what `f` returns with `yield from` (a generator function, or one
    declared to return a generator)?"""
    if inspect.isgeneratorfunction(f):
        return True
    ann = getattr(f, "__annotations__", {}).get("return")
    return ann is not None and "gen" in str(ann).lower()


def _returns_a_value(f: object) -> bool:
    """Has `f` a `return EXPR` of its own (not of a nested function)? True when its source
    cannot be read: only a certain mistake is refused."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(f)))  # type: ignore[arg-type]
    except (OSError, TypeError, SyntaxError):
        return True
    fn = tree.body[0]
    todo: list[ast.AST] = list(getattr(fn, "body", []))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Return) and node.value is not None:
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))
    return False


def _check_overrides(kind: Kind, spec: str, cls: type, base: type) -> None:
    """Refuse, before any run, an override that cannot work the way the kernel calls it:
    a method with `yield` where the kernel calls a plain function (its body would never run:
    `start` written as a generator starts nothing), or a plain function that returns nothing
    where the kernel runs a generator with `yield from` (`write_throttle` without `yield`).
    Both would otherwise make a run silently wrong or fail far from the mistake."""
    for klass in cls.__mro__:
        if klass is object or klass.__module__.startswith("vfslab."):
            continue
        for name, f in vars(klass).items():
            want = getattr(base, name, None)
            if not inspect.isfunction(f) or not inspect.isfunction(want):
                continue
            file = inspect.getsourcefile(f) or klass.__module__
            line = f.__code__.co_firstlineno
            if inspect.isgeneratorfunction(f) and not _runs_as_generator(want):
                raise InputError(
                    f"{kind} {spec!r}: {klass.__name__}.{name} contains `yield`, so calling it "
                    f"only makes a generator and none of its body runs; the kernel calls "
                    f"{name}() as a plain function (take the `yield` out, or spawn a thread "
                    f"for the part that sleeps)", file, line)
            if (inspect.isgeneratorfunction(want) and not inspect.isgeneratorfunction(f)
                    and not _returns_a_value(f)):
                raise InputError(
                    f"{kind} {spec!r}: {klass.__name__}.{name} has no `yield`, but the kernel "
                    f"runs {name}() with `yield from` (it sleeps: write it as a generator, "
                    f"with `yield from` where it waits, or `yield from ()` if it never does)",
                    file, line)


__all__ = ["BUILTIN", "GROUPS", "canonical", "installed", "known_names", "loaded_plugins",
           "resolve"]


def policy_scopes(selected: list[str]) -> dict[str, type]:
    """Each `--set` scope a policy answers to (its `name`) -> its class: the selected specs
    first, then the built-in and installed policies (so a key for a policy that is not
    selected is checked too, never silently ignored)."""
    out: dict[str, type] = {}
    for spec in selected:
        cls = resolve("policy", spec)
        out.setdefault(str(getattr(cls, "name", spec)), cls)
    for spec in known_names("policy"):
        if spec in out:
            continue
        try:
            cls = resolve("policy", spec, selected=False)
        except InputError:
            continue          # a broken installed plug-in is reported when it is selected
        out.setdefault(str(getattr(cls, "name", spec)), cls)
    return out


def check_policy_sets(pol_opts: dict[str, dict[str, object]], selected: list[str],
                      where: str = "--set") -> dict[str, dict[str, object]]:
    """Validate `--set POLICY.key=value` settings against the policies' declared tunables.
    Returns the options of each scope, converted to their declared types."""
    scopes = policy_scopes(selected)
    out: dict[str, dict[str, object]] = {}
    for scope, opts in pol_opts.items():
        cls = scopes.get(scope)
        if cls is None:
            raise InputError(f"{where} {scope}.*: unknown scope {scope!r}; expected a policy "
                             f"({', '.join(scopes)}), machine or cost")
        parsed = cls.parse_options(dict(opts))   # type: ignore[attr-defined]
        out[scope] = {k: parsed[k] for k in opts}
    return out


def options_for(spec: str, pol_opts: dict[str, dict[str, object]]) -> dict[str, object]:
    """The `--set` options that apply to the policy `spec`."""
    cls = resolve("policy", spec)
    return dict(pol_opts.get(str(getattr(cls, "name", spec)), {}))
