"""`ServerProcess`: `moldau server` as a separate OS process, for tests that kill it.

Started with the current interpreter (`python -m moldau server`) on 127.0.0.1 and a free port;
`start()` returns once the server printed its listening line. `kill()` sends SIGKILL (a crash:
nothing gets to flush), `terminate()` SIGTERM (clean shutdown). Every process started is
stopped by PID in `close()`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from moldau.runtime.ports import free_port  # noqa: F401 - re-exported for tests

_START_TIMEOUT_S = 30


def _pythonpath() -> str:
    src = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH")
    return src if not existing else src + os.pathsep + existing


class ServerProcess:
    def __init__(self, data_dir: str, port: int | None = None, overrides: dict[str, str] | None = None,
                 extra_args: list[str] | None = None, new_session: bool = False):
        self.data_dir = data_dir
        # Its own session, as a server started by systemd or from its own shell has: with
        # Linux's autogroup scheduling the CPU is shared fairly between sessions, so a server in
        # the caller's session shares one share with the caller and its load generators
        # (benchmarks/bench/systems.py starts it so; tests keep it in theirs, so that a killed
        # test run takes its servers along).
        self.new_session = new_session
        self.host = "127.0.0.1"
        self.extra_args = list(extra_args or [])  # more `moldau server` arguments (--add-scram ...)
        self.port = port or free_port()
        self.overrides = overrides or {}
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        command = [sys.executable, "-m", "moldau", "server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--data-dir", self.data_dir]
        for key, value in sorted(self.overrides.items()):
            command += ["--override", f"{key}={value}"]
        command += self.extra_args
        env = dict(os.environ, PYTHONPATH=_pythonpath())
        began = time.monotonic()
        self.stderr_path = self.data_dir.rstrip("/") + ".server.log"
        with open(self.stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True,
                                            start_new_session=self.new_session)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.kill()
            self.process.wait(_START_TIMEOUT_S)
            raise RuntimeError(f"moldau server did not start: {line!r} {Path(self.stderr_path).read_text()[-2000:]}")
        self.startup_seconds = time.monotonic() - began
        return self

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or close anything."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(_START_TIMEOUT_S)

    def terminate(self) -> int:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(_START_TIMEOUT_S)
        return self.process.returncode if self.process else 0

    def close(self) -> None:
        self.kill()
        if self.process is not None:
            if self.process.stdout:
                self.process.stdout.close()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
