"""Scenario files: the shipped library loads, and malformed files name file, line and what
was expected."""

from __future__ import annotations

import pytest

from vfslab.errors import InputError
from vfslab.scenarios import all_names
from vfslab.scenarios.loader import load
from vfslab.scenarios.toml_file import parse_scenario, parse_size


def test_every_library_scenario_loads() -> None:
    names = all_names()
    for required in ("pr24596", "untar", "database", "logappend", "stream", "readwrite",
                     "mmapwriter"):
        assert required in names
    for name in names:
        sc = load(name)
        assert sc.processes and sc.duration_s > 0


@pytest.mark.parametrize("text,expect", [
    ("64KiB", 65536), ("4k", 4096), ("4MB", 4_000_000), ("1GiB", 1 << 30), ("512", 512),
])
def test_sizes(text: str, expect: int) -> None:
    assert parse_size(text) == expect


GOOD = """
name = "t"
duration = "2s"
[[process]]
name = "w"
pattern = "writer"
path = "/a"
size = "1MiB"
bs = "4KiB"
"""


def test_a_good_file_parses() -> None:
    sc = parse_scenario(GOOD, "t.toml")
    assert sc.name == "t" and sc.duration_s == 2.0 and sc.processes[0].name == "w"


@pytest.mark.parametrize("text,line,words", [
    (GOOD.replace('bs = "4KiB"', 'bs = "lots"'), 9, "expected a size"),
    (GOOD.replace('pattern = "writer"', 'pattern = "scribbler"'), 6, "expected pattern"),
    (GOOD.replace('path = "/a"', 'path = "a"'), 7, "absolute path"),
    (GOOD + "\nbogus = 1\n", 11, "has no parameter"),
    (GOOD.replace('duration = "2s"', 'duration = "soon"'), 3, "duration"),
    ("name = \n", 1, "not valid TOML"),
    ('name = "x"\n', 0, "at least one"),
    ('name = "x"\nwhat = 3\n', 2, "unknown key"),
])
def test_bad_files_name_file_line_and_expectation(text: str, line: int, words: str) -> None:
    with pytest.raises(InputError) as ei:
        parse_scenario(text, "bad.toml")
    e = ei.value
    assert e.file == "bad.toml" and words in e.message
    if line:
        assert e.line == line


def test_unknown_scenario_name_lists_the_choices() -> None:
    with pytest.raises(InputError, match="expected one of"):
        load("no-such-scenario")
