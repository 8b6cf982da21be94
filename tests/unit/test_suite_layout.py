"""The test tree itself: pytest imports test files by basename (no packages under tests/), so
two files of one name in different folders stop the whole run at collection — CI failed once
on exactly that after two branches each added a test_request_memory.py."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_no_two_test_files_share_a_basename():
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if "__pycache__" in path.parts or not (path.name.startswith("test_") or path.name == "conftest.py"):
            continue
        if path.name == "conftest.py":
            continue  # pytest loads conftests by path
        by_name[path.name].append(str(path.relative_to(TESTS)))
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}
