"""A run stopped by an exception that is not the emulated kernel's: whose code raised it, and
where, said in a few lines instead of a bare traceback.

An emulated panic or deadlock is a finding and stops a run cleanly (`vfslab.sim.panic`); bad
input is an `InputError`. Anything else that escapes a run is one of two things:
- **a plug-in's** (`--policy file.py:Class`, `--protocol module:Class`, an installed entry
  point): some frame of the traceback is the plug-in's code. The report names the plug-in, the
  exception, the plug-in's own frames with their source lines (what its author needs) and the
  kernel call that led into them; the command exits 3.
- **vfslab's own** (a bug): the report names the exception and the innermost frame, and the
  command line writes the whole traceback to a file for a bug report; exit 70 (EX_SOFTWARE).

Either way the run's identity (scenario, policy, protocol, seed) and the emulated time are
said. `RunFailure` carries only strings, so it crosses process boundaries (the local pool,
Ray, Dask) intact.
"""

from __future__ import annotations

import linecache
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from vfslab.errors import InputError
from vfslab.sim.panic import Panic
from vfslab.sim.watchdog import Hang

PLUGIN_EXIT = 3
INTERNAL_EXIT = 70          # sysexits.h EX_SOFTWARE
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_SHOWN_FRAMES = 8           # of a plug-in's own frames, the innermost


class RunFailure(Exception):
    """A run stopped by an exception from a plug-in's code (`plugin` true) or from vfslab's
    own. `str()` is the report for a person; `detail` the full traceback (for a bug report)."""

    def __init__(self, message: str, plugin: bool, detail: str) -> None:
        super().__init__(message, plugin, detail)
        self.message = message
        self.plugin = plugin
        self.detail = detail

    def __str__(self) -> str:
        return self.message

    @property
    def exit_code(self) -> int:
        return PLUGIN_EXIT if self.plugin else INTERNAL_EXIT


class ApiMisuse(Exception):
    """A plug-in used its API in a way that makes a run silently wrong (a generator method
    called without `yield from`); `module` is the plug-in class's module."""

    def __init__(self, message: str, module: str) -> None:
        super().__init__(message, module)
        self.message = message
        self.module = module

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Frame:
    file: str
    line: int
    func: str
    module: str

    def where(self) -> str:
        return f"{_shown_path(self.file)}:{self.line} in {self.func}"

    def source(self) -> str:
        return linecache.getline(self.file, self.line).strip()


def _shown_path(file: str) -> str:
    """vfslab's own files relative to the checkout (vfslab/kern/...), others as they are."""
    p = Path(file)
    try:
        return str(p.resolve().relative_to(_PACKAGE_ROOT))
    except ValueError:
        return file


def _frames(tb: TracebackType | None) -> list[_Frame]:
    out = []
    while tb is not None:
        f = tb.tb_frame
        out.append(_Frame(f.f_code.co_filename, tb.tb_lineno, f.f_code.co_name,
                          str(f.f_globals.get("__name__", ""))))
        tb = tb.tb_next
    return out


def _plugin_of(module: str) -> str | None:
    """'the policy SPEC' if `module` is a loaded plug-in's (or in its package), else None."""
    from vfslab.plugins import loaded_plugins

    for mod, (kind, spec) in loaded_plugins().items():
        root = mod if mod.startswith("vfslab_user_") else mod.split(".")[0]
        if module == root or module.startswith(root + "."):
            return f"the {kind} {spec!r}"
    return None


def describe(exc: BaseException, run: str, time_ns: int | None) -> RunFailure:
    """The `RunFailure` for `exc`, raised during `run` (a phrase: "pr24596, policy syncer,
    ..."), at emulated time `time_ns` (None if the machine had not started)."""
    frames = _frames(exc.__traceback__)
    if isinstance(exc, Hang):
        # the watchdog's signal handler is where it was raised, not where the run was stuck
        frames = [fr for fr in frames if fr.module != Hang.__module__]
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    when = f"; emulated time {time_ns / 1e9:.6f} s" if time_ns is not None else ""
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, ApiMisuse):
        who = _plugin_of(exc.module)
        if who is not None:          # the message names the line; the traceback adds nothing
            return RunFailure(f"{who} misused its API: {exc}\n  (run: {run}{when})", True,
                              detail)
    owners = [_plugin_of(fr.module) for fr in frames]
    mine = [i for i, o in enumerate(owners) if o is not None]
    if not mine:
        inner = frames[-1].where() if frames else "an unknown place"
        from vfslab.plugins import loaded_plugins

        used = sorted({f"the {kind} {spec!r}" for kind, spec in loaded_plugins().values()})
        whose = "" if used else " (a bug in vfslab)"
        lines = [f"internal error{whose}: {what}", f"  at {inner}", f"  (run: {run}{when})"]
        if used:
            # its code is not in the traceback, but what it did may be the cause
            lines.append(f"  the run used {', '.join(used)}: if it changed the kernel's "
                         "state or returned what its API does not allow, look there first")
        return RunFailure("\n".join(lines), False, detail)
    last = mine[-1]
    who = owners[last]
    # the plug-in's innermost stretch of frames, and what called into it
    first = last
    while first > 0 and owners[first - 1] is not None:
        first -= 1
    lines = [f"{who} raised {what}", f"  (run: {run}{when})", "  in its code:"]
    for fr in frames[max(first, last + 1 - _SHOWN_FRAMES):last + 1]:
        lines.append(f"    {fr.where()}")
        src = fr.source()
        if src:
            lines.append(f"      {src}")
    if last + 1 < len(frames):
        fr = frames[-1]
        lines.append(f"  raised in {fr.where()}, called by the code above")
    if first > 0:
        lines.append(f"  called from {frames[first - 1].where()}")
    return RunFailure("\n".join(lines), True, detail)


@contextmanager
def reported(run: Callable[[], str], clock: Callable[[], int | None]) -> Iterator[None]:
    """Turn an exception that escapes the block into a `RunFailure` (panics, bad input and a
    failure already described pass through). `run` and `clock` are asked only then."""
    try:
        yield
    except (Panic, InputError, RunFailure):
        raise
    except Exception as e:
        if host_path_error(e) and not any(_plugin_of(fr.module)
                                          for fr in _frames(e.__traceback__)):
            raise                     # the host refused a file the user named: the CLI says so
        raise describe(e, run(), clock()) from e


def host_path_error(e: BaseException) -> bool:
    """An OSError on a path of the host's (an --out directory, a --trace or --image file):
    the user's environment, not a bug; the command line reports it as bad input."""
    return isinstance(e, OSError) and e.filename is not None
