"""strace's output syntax (strace 4.x to 6.x, `-f`, `-t`/`-tt`/`-ttt`/`-r`, `-T`, `-y`), read
as strace writes it: each line becomes a `Call` (or an `Exit`) with its arguments split at
the top level, strings kept quoted (unescape them with `unescape`), `-y` decorations kept
with the descriptor they follow.

What strace writes, and so what this reader handles:
- a line prefix: `[pid N] ` (several tasks on a terminal) or `N ` (`-f -o FILE`);
- a timestamp: `HH:MM:SS` (`-t`), `HH:MM:SS.ffffff` (`-tt`), seconds since the epoch (`-ttt`)
  or since the previous line (`-r`; told apart from `-ttt` by size: under 10^8 s); a log has
  one kind or none (then each line is 1 us after the last, and think times are unknown);
- a call: `NAME(ARGS) = RET` with RET a number, `0x...` or `?`, a `-y` decoration (`3</a/b>`,
  in which strace escapes `<`, `>`, `"` and unprintable bytes), ` ERRNO (text)` when it
  failed, anything after in parentheses, and ` <SECONDS>` (`-T`);
- strings `"..."` with C escapes, followed by `...` when strace truncated them (`-s`);
  arrays `[...]`, structures `{...}`, comments `/* ... */`;
- `NAME(ARGS <unfinished ...>` and later `<... NAME resumed>REST` for a call another task
  interrupted: joined into one call, dated at its start, lasting until its end;
- `+++ exited with N +++` / `+++ killed by SIG... +++` (the task is gone: its pid may be
  reused), `--- SIG... ---` (ignored).
Anything else is an error naming the file, the line and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from vfslab.errors import InputError

S = 1_000_000_000
_PREFIX = re.compile(r"^(?:\[pid\s+(\d+)\]\s+|(\d+)\s+)?")
_CLOCK = re.compile(r"^(\d{1,2}):(\d\d):(\d\d)(?:\.(\d+))?\s+")
_SECS = re.compile(r"^(\d+)\.(\d+)\s+")
_NAME = re.compile(r"^([a-z_][a-z_0-9]*)\(")
_RESUMED = re.compile(r"^<\.\.\.\s+([a-z_][a-z_0-9]*)\s+resumed>\s?")
_RET = re.compile(r"^\s*=\s*(0x[0-9a-fA-F]+|-?\d+|\?)")
_ERRNO = re.compile(r"^\s+(E[A-Z0-9]+)\s+\(")
_DUR = re.compile(r"<(\d+\.\d+)>\s*$")
UNFINISHED = "<unfinished ...>"
NO_RETURN = frozenset({"exit", "exit_group", "execve", "execveat", "rt_sigreturn"})


@dataclass(slots=True)
class Call:
    lineno: int
    pid: int
    t_ns: int                 # when it started (see the module docstring for the clock)
    name: str
    args: list[str]           # top-level arguments as written (strings still quoted)
    ret: int | None           # None for '?'
    errno: str | None         # ENOENT, ... when it failed
    ret_deco: str | None      # the -y path of a returned descriptor (escapes undone)
    dur_ns: int               # -T, 0 without it


@dataclass(slots=True)
class Exit:
    lineno: int
    pid: int
    t_ns: int


@dataclass(slots=True)
class Spawning:
    """A fork-family call left unfinished: the child it makes may print lines before the
    call returns in the log."""

    lineno: int
    pid: int
    t_ns: int
    name: str
    args: list[str]


SPAWNS = frozenset({"fork", "vfork", "clone", "clone2", "clone3"})


def _c_int(s: str) -> int:
    """A result as strace prints it: decimal, 0x hex, or 0-prefixed octal (umask)."""
    if s.startswith(("0x", "0X")):
        return int(s, 16)
    if len(s) > 1 and s.startswith("0"):
        return int(s, 8)
    return int(s)


def unescape(s: str) -> str:
    """strace's C escapes (\\n \\t \\" \\\\ \\xNN \\NNN). The bytes they spell are
    decoded as UTF-8 when they are UTF-8 (a name "caf\\303\\251" is "café", whose UTF-8 is
    the name's own bytes again), else taken as Latin-1, one character a byte."""
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    n = len(s)
    simple = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "a": "\a", "b": "\b",
              '"': '"', "\\": "\\", "'": "'", "?": "?"}
    while i < n:
        c = s[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = s[i + 1]
        if d in simple:
            out.append(simple[d])
            i += 2
        elif d == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", s[i + 2:i + 4]):
            out.append(chr(int(s[i + 2:i + 4], 16)))
            i += 4
        elif d in "01234567":
            j = i + 1
            while j < n and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(chr(int(s[i + 1:j], 8)))
            i = j
        else:
            out.append(d)
            i += 2
    text = "".join(out)
    try:
        # why: taken as Latin-1, each byte past 0x7f of a UTF-8 name is a character that the
        # kernel's UTF-8 makes two bytes, so a name of 100 accented letters (200 bytes on
        # Linux) was 400 in the replay, past FFS's 255
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def string_value(arg: str) -> str | None:
    """The text of a quoted string argument (escapes undone, a `...` truncation dropped), or
    None if the argument is not a string."""
    a = arg.strip()
    if not a.startswith('"'):
        return None
    end = _string_end(a, 0)
    return unescape(a[1:end - 1])


def _past(text: str, i: int, close: str, what: str) -> int:
    """The index just past the `close` that ends what starts at text[i], skipping
    backslash escapes."""
    n = len(text)
    j = i + 1
    while j < n and text[j] != close:
        j += 2 if text[j] == "\\" else 1
    if j >= n:
        raise ValueError(what)
    return j + 1


def _string_end(text: str, i: int) -> int:
    """The index just past the string starting at text[i] == '"' (and its `...`)."""
    j = _past(text, i, '"', "an unterminated string (no closing quote)")
    return j + 3 if text.startswith("...", j) else j


def _deco_end(text: str, i: int) -> int:
    """The index just past a -y decoration starting at text[i] == '<'."""
    return _past(text, i, ">", "a descriptor's <path> without its closing '>'")


_TOKEN = re.compile(r"""
    "(?:[^"\\]|\\.)*"(?:\.\.\.)?               # a string, maybe truncated
  | (?:(?<=\d)|(?<=AT_FDCWD))<(?:[^>\\]|\\.)*>    # a -y decoration after a descriptor
  | <unfinished\ \.\.\.>
  | /\*.*?\*/                                     # a comment
  | [()\[\]{},]
  | "                                              # a string that never closes
  | (?:(?<=\d)|(?<=AT_FDCWD))<                      # a decoration that never closes
  | /\*                                            # a comment that never closes
""", re.X | re.S)


def split_call(text: str, i: int) -> tuple[list[str], int, bool]:
    """The arguments of a call whose '(' is just before text[i]: (arguments, the index just
    past the closing ')', or of '<unfinished ...>', whether the call is unfinished)."""
    args: list[str] = []
    depth = 0
    start = i
    for m in _TOKEN.finditer(text, i):
        tok = m.group()
        c = tok[0]
        if c == '"':
            if len(tok) == 1:
                raise ValueError("an unterminated string (no closing quote)")
            continue
        if c == "<":
            if tok[1:2] == "u":
                seg = text[start:m.start()].strip()
                if seg:
                    args.append(seg)
                return args, m.start(), True
            if len(tok) == 1:
                raise ValueError("a descriptor's <path> without its closing '>'")
            continue
        if c == "/":
            if len(tok) == 2:
                raise ValueError("a comment without its closing '*/'")
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                if c != ")":
                    raise ValueError(f"an unbalanced {c!r}")
                seg = text[start:m.start()].strip()
                if seg:
                    args.append(seg)
                return args, m.end(), False
            depth -= 1
        elif depth == 0:                  # a comma between arguments
            args.append(text[start:m.start()].strip())
            start = m.end()
    raise ValueError("expected the call's closing ')' and ' = RESULT'")


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments of an argument list without its parentheses."""
    args, _end, _unf = split_call(text + ")", 0)
    return args


def fd_and_path(arg: str) -> tuple[int | None, str | None]:
    """A descriptor argument: (its number, or None for AT_FDCWD or not a number; the -y
    path if shown)."""
    a = arg.strip()
    m = re.match(r"^(-?\d+|AT_FDCWD)(<(.*)>)?$", a, re.S)
    if m is None:
        return None, None
    num = None if m.group(1) == "AT_FDCWD" else int(m.group(1))
    return num, unescape(m.group(3)) if m.group(2) else None


class _Clock:
    """Turns each line's timestamp into ns, checking the log keeps to one kind."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.kind: str | None = None       # "clock", "epoch", "relative", "none"
        self.t = 0
        self.day = 0
        self.last_clock = -1

    def read(self, rest: str, lineno: int) -> tuple[int, str]:
        m = _CLOCK.match(rest)
        if m:
            self._expect("clock", lineno)
            h, mi, sec, frac = m.groups()
            t = (int(h) * 3600 + int(mi) * 60 + int(sec)) * S
            if frac:
                t += int(frac.ljust(9, "0")[:9])
            if t < self.last_clock - 3600 * S:
                self.day += 86400 * S          # past midnight
            self.last_clock = t
            return t + self.day, rest[m.end():]
        m = _SECS.match(rest)
        if m and (self.kind in (None, "epoch", "relative")):
            secs = int(m.group(1))
            ns = secs * S + int(m.group(2).ljust(9, "0")[:9])
            if self.kind is None:
                self.kind = "epoch" if secs >= 10**8 else "relative"
            if self.kind == "relative":
                self.t += ns
                return self.t, rest[m.end():]
            return ns, rest[m.end():]
        self._expect("none", lineno)
        self.t += 1000
        return self.t, rest

    def _expect(self, kind: str, lineno: int) -> None:
        if self.kind is None:
            self.kind = kind
        elif self.kind != kind:
            names = {"clock": "HH:MM:SS[.us] (-t/-tt)", "epoch": "seconds since the epoch "
                     "(-ttt)", "relative": "seconds since the last line (-r)",
                     "none": "no timestamp"}
            raise InputError(f"expected a timestamp of the log's kind, {names[self.kind]}, as "
                             f"on its first line; this line has {names[kind]}", self.path,
                             lineno)


def read_log(path: str, text: str, skip: frozenset[str] | set[str] = frozenset()
             ) -> Iterator[Call | Exit | Spawning]:
    """Each call and exit of an strace log, in the log's order (see the module docstring).
    Calls named in `skip` come without their arguments or result (the reader does not need
    them: they are only counted), which saves splitting half of a typical log."""
    clock = _Clock(path)
    pending: dict[int, tuple[str, str, int, int]] = {}     # pid -> (name, head, t, lineno)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\n\r")
        if not line.strip():
            continue
        m = _PREFIX.match(line)
        pid = int(m.group(1) or m.group(2) or 0) if m else 0
        rest = (line[m.end():] if m else line).lstrip()
        t, rest = clock.read(rest, lineno)
        if rest.startswith("+++"):
            if "exited with" in rest or "killed by" in rest:
                yield Exit(lineno, pid, t)
            continue
        if rest.startswith("---") or rest.startswith("strace: "):
            continue
        rm = _RESUMED.match(rest)
        if rm:
            if pid not in pending or pending[pid][0] != rm.group(1):
                raise InputError(f"expected a '{rm.group(1)}(... <unfinished ...>' of pid "
                                 f"{pid} before this '<... {rm.group(1)} resumed>'", path,
                                 lineno)
            name, head, t0, _ln = pending.pop(pid)
            body = head + rest[rm.end():]
            t = t0
        else:
            nm = _NAME.match(rest)
            if nm is None:
                raise InputError(f"expected NAME(ARGS) = RESULT, '+++ ... +++' or '--- ... "
                                 f"---', got {rest[:60]!r}", path, lineno)
            name = nm.group(1)
            body = rest[nm.end():]
            if name in skip:
                if body.endswith(UNFINISHED):
                    pending[pid] = (name, "", t, lineno)
                else:
                    yield Call(lineno, pid, t, name, [], None, None, None, 0)
                continue
        if name in skip:                  # a skipped call resumed
            yield Call(lineno, pid, t, name, [], None, None, None, 0)
            continue
        try:
            args, end, unfinished = split_call(body, 0)
        except ValueError as e:
            raise InputError(f"{name}(...): {e}", path, lineno) from None
        if unfinished:
            pending[pid] = (name, body[:end], t, lineno)
            if name in SPAWNS:
                yield Spawning(lineno, pid, t, name, args)
            continue
        tail = body[end:]
        r = _RET.match(tail)
        if r is None:
            if not tail.strip() and name in NO_RETURN:
                # exit_group, exit and execve in a task that is gone: no result is printed
                yield Call(lineno, pid, t, name, args, None, None, None, 0)
                continue
            raise InputError(f"expected ' = RESULT' after {name}(...), got {tail[:40]!r}",
                             path, lineno)
        ret_s = r.group(1)
        ret = None if ret_s == "?" else _c_int(ret_s)
        after = tail[r.end():]
        deco = None
        if after.startswith("<") and not _DUR.match(after.strip()):
            try:
                j = _deco_end(after, 0)
            except ValueError as e:
                raise InputError(f"{name}(...): {e}", path, lineno) from None
            deco = unescape(after[1:j - 1])
            after = after[j:]
        em = _ERRNO.match(after)
        errno = em.group(1) if em and ret is not None and ret < 0 else None
        dm = _DUR.search(after)
        dur = 0
        if dm:
            whole, frac = dm.group(1).split(".")
            dur = int(whole) * S + int(frac.ljust(9, "0")[:9])
        yield Call(lineno, pid, t, name, args, ret, errno, deco, dur)
    for pid, (name, _head, _t, ln) in pending.items():
        raise InputError(f"pid {pid}'s {name}(...) <unfinished ...> is never resumed", path,
                         ln)
