"""The README's two set-up commands, and what CI adds to the second: the README says exactly
what `.ci/run` does, and `scripts/test.sh` never installs into the system's own Python."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_readme_opens_with_exactly_two_setup_commands():
    head = (REPO / "README.md").read_text().split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", head, re.S)
    commands = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    assert commands == ["pip install . && moldau server", "bash scripts/test.sh"]


def test_ci_adds_exactly_what_the_readme_says():
    run = (REPO / ".ci" / "run").read_text()
    commands = [line for line in run.splitlines() if line and not line.startswith("#")]
    assert commands == ["set -euo pipefail", 'cd "$(dirname "${BASH_SOURCE[0]}")/.."',
                        "export MOLDAU_REQUIRE_ALL=1", "exec bash scripts/test.sh -q"]
    readme = (REPO / "README.md").read_text()
    assert "CI (`.ci/run`) runs this same\ncommand with two differences: `MOLDAU_REQUIRE_ALL=1`" in readme
    assert "and pytest's `-q`" in readme


def _interpreter(root: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "VIRTUAL_ENV")}
    return subprocess.run(["bash", str(root / "scripts" / "test-python.sh")], capture_output=True, text=True,
                          timeout=300, env={**clean, **env})


def test_test_sh_installs_into_a_virtualenv_never_the_system_python(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "test-python.sh", tmp_path / "scripts")
    assert _interpreter(tmp_path, PYTHON="/opt/py/bin/python").stdout.strip() == "/opt/py/bin/python"
    venv = Path(sys.prefix)
    if (venv / "bin" / "python").exists() and sys.prefix != sys.base_prefix:
        assert _interpreter(tmp_path, VIRTUAL_ENV=str(venv)).stdout.strip() == str(venv / "bin" / "python")
    created = _interpreter(tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == str(tmp_path / ".venv" / "bin" / "python")
    assert "creating the virtualenv .venv" in created.stderr
    prefix = subprocess.run([created.stdout.strip(), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
                            capture_output=True, text=True, timeout=60)
    assert prefix.stdout.strip() == "True"
    assert _interpreter(tmp_path).stderr == ""  # the second time it is reused
