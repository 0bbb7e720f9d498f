"""Errors for bad input: one clear message naming the file, the line and what was expected.

Every reader (fio job files, strace logs, scenario and sweep files, `--set` options) raises
InputError; the command line prints it as `vfslab: FILE:LINE: message` and exits 2.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Malformed input from a user: file, line (1-based, 0 when not line-bound) and message."""

    def __init__(self, message: str, file: str | None = None, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{where}{self.message}"


def read_text(path: str, what: str) -> str:
    """A user's text file (`what` says which kind: "sweep file"), or an InputError naming it
    and why it cannot be read: missing, a directory, unreadable, or not UTF-8 text."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no such {what}", path) from None
    except IsADirectoryError:
        raise InputError(f"expected a {what}, got a directory", path) from None
    except OSError as e:
        raise InputError(f"cannot read {what}: {e.strerror}", path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"expected a {what} (text), but byte {e.start} is not UTF-8: a binary "
                         "file?", path) from None
