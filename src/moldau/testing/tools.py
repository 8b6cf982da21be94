"""Test-time requirements: skip when a tool is missing, fail when CI says everything is required.

CI (`.ci/run`) sets MOLDAU_REQUIRE_ALL=1, so a test that needs kcat, Java or the Kafka jars fails
there when the tool is missing instead of silently skipping.
"""

from __future__ import annotations

import os
import shutil


def require_all() -> bool:
    return os.environ.get("MOLDAU_REQUIRE_ALL", "") not in ("", "0")


def need(condition: bool, what: str) -> None:
    """Skip the current test (or fail under MOLDAU_REQUIRE_ALL=1) unless `condition` holds."""
    if condition:
        return
    import pytest

    message = f"{what} is not available"
    if require_all():
        pytest.fail(message + " (MOLDAU_REQUIRE_ALL=1)")
    pytest.skip(message)


def need_executable(name: str) -> str:
    path = shutil.which(name)
    need(path is not None, f"executable {name!r}")
    assert path is not None
    return path
