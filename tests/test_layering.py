"""The layers as NetBSD has them: the kernel reaches file systems only through the vnode
operations vector and its observers only through the notification vector, so it imports
neither; the engine knows nothing of the kernel."""

from __future__ import annotations

import ast
from pathlib import Path

import vfslab

ROOT = Path(vfslab.__file__).parent
KERN_MUST_NOT = ("fs", "dev", "policy", "metrics", "crash", "commands", "sweep")


def _runtime_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import that runs: at module level or in a function, but not
    under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                skip.update(id(n) for n in ast.walk(sub))
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.lineno, node.module))
    return out


def test_the_kernel_imports_no_file_system_disk_policy_or_observer() -> None:
    bad = []
    for path in sorted((ROOT / "kern").glob("*.py")):
        for line, mod in _runtime_imports(path):
            parts = mod.split(".")
            if parts[0] == "vfslab" and len(parts) > 1 and parts[1] in KERN_MUST_NOT:
                bad.append(f"{path.name}:{line} imports {mod}")
    assert not bad, bad


def test_the_kernel_runs_without_the_validator() -> None:
    bad = [f"{p.name}:{line} imports {mod}" for p in sorted((ROOT / "kern").glob("*.py"))
           for line, mod in _runtime_imports(p) if mod.startswith("vfslab.check")]
    assert not bad, bad


def test_the_engine_neither_imports_nor_names_the_kernel() -> None:
    bad = []
    for path in sorted((ROOT / "sim").glob("*.py")):
        for line, mod in _runtime_imports(path):
            if not mod.startswith(("vfslab.sim", "__future__")) and mod.startswith("vfslab"):
                bad.append(f"{path.name}:{line} imports {mod}")
        text = path.read_text()
        for word in ("vfslab.kern", "vfslab.fs", "holdrele", "brelvp", "biodone", "vnode",
                     "v_interlock", "genfs", "ffs_"):
            if word in text:
                bad.append(f"{path.name} names {word!r}")
    assert not bad, bad


def test_a_mutated_import_is_caught(tmp_path: Path) -> None:
    """The parse sees function-level imports and ignores TYPE_CHECKING ones."""
    p = tmp_path / "m.py"
    p.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                 "    from vfslab.fs.ufs import FFS\n"
                 "def f():\n    from vfslab.policy import make_policy\n")
    mods = [m for _, m in _runtime_imports(p)]
    assert "vfslab.policy" in mods and "vfslab.fs.ufs" not in mods
