"""Errors for bad input: one clear message naming the file, the line and what was expected.

Every reader (fio job files, strace logs, scenario and sweep files, `--set` options) raises
InputError; the command line prints it as `vfslab: FILE:LINE: message` and exits 2.
"""

from __future__ import annotations


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
