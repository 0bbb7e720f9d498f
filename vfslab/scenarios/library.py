"""The scenario files shipped with vfslab (vfslab/scenarios/*.toml): short, commented files a
user copies and edits."""

from __future__ import annotations

import tomllib
from pathlib import Path

HERE = Path(__file__).parent


def library_files() -> dict[str, tuple[Path, str]]:
    out: dict[str, tuple[Path, str]] = {}
    for p in sorted(HERE.glob("*.toml")):
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError:
            continue
        out[p.stem] = (p, str(data.get("description", "")).strip().splitlines()[0]
                       if data.get("description") else "")
    return out
