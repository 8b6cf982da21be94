"""Running the `moldau` command from tests: in-process (fast) or as a real subprocess.

    result = run_cli(["topics", "list", "--bootstrap-server", broker.bootstrap_servers])
    assert result.code == 0 and "my-topic" in result.out.splitlines()

`run_cli` calls `moldau.cli.main.main` with stdin, stdout, stderr and environment swapped for
the call, so output and exit code can be asserted without paying an interpreter start per
command. `run_cli_process` runs `python -m moldau` for what only a process shows: signals, the
entry point, and that no traceback ever reaches the user.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@contextlib.contextmanager
def _environment(changes: Mapping[str, str | None] | None):
    saved = {key: os.environ.get(key) for key in changes or {}}
    try:
        for key, value in (changes or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_cli(argv: Sequence[str], *, stdin: str = "", env: Mapping[str, str | None] | None = None) -> CliResult:
    """`moldau ARGV` in this process; SystemExit (argparse errors, --version) becomes the code."""
    from moldau.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.stdin = saved_stdin
    return CliResult(code, out.getvalue(), err.getvalue())


def cli_command(argv: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "moldau", *argv]


def cli_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ with this source tree first on PYTHONPATH (the package need not be installed)."""
    src = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def run_cli_process(argv: Sequence[str], *, stdin: str = "", timeout_s: float = 60.0,
                    env: Mapping[str, str] | None = None) -> CliResult:
    """`python -m moldau ARGV` as a subprocess, killed if it outlives timeout_s."""
    completed = subprocess.run(cli_command(argv), input=stdin, capture_output=True, text=True,
                               timeout=timeout_s, env=cli_environment(env))
    return CliResult(completed.returncode, completed.stdout, completed.stderr)
