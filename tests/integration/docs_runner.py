"""Run the code blocks of one Markdown file, in order, the way a reader would; report each.

Usage (tests/integration/test_docs.py runs it inside a private network namespace, so that the
docs' own ports — 9092, 8083, 8080 — are free and nothing on the machine is touched):

    python tests/integration/docs_runner.py FILE.md WORKDIR   # JSON lines on stdout

What runs. Fenced blocks tagged `sh`, `bash` or `shell` run as `bash -e -o pipefail`; `console`
blocks are transcripts, whose `$ ` lines run (with their `\\` continuations) and whose other
lines are output; `python` blocks run with this interpreter. Blocks of any other tag (or none)
are file contents, output or usage synopses and are not run. Every block runs in WORKDIR, which
holds a copy of the repository's `config/` and links to its other directories, so `config/…`
and `benchmarks/…` paths work; blocks of one file share it, and what a block leaves running in
the background (`moldau server &`) keeps running for the later blocks, like a terminal left
open, until the file is done. A block must finish with exit status 0 within BLOCK_TIMEOUT_S,
without librdkafka logging connection failures (a snippet's client outliving its broker).

Annotations: a comment in the block containing `doc-test:` changes how it runs. It is part of
the block, visible to readers, and says why:

- `# doc-test: skip (REASON)` — not run; the reason is required (e.g. it installs software,
  runs for ten minutes, or needs a host that does not exist).
- `# doc-test: background` — the block runs until stopped (a server, a Connect worker, the
  console: "in another terminal"). It is started, the runner waits for its first line of
  output, and the later blocks run beside it; it must not have failed when the file is done.
- `# doc-test: start-stop` — each line is a separate long-running command (alternative ways to
  start a server): each is started, must print a line and keep running, and must exit 0 on
  SIGTERM.
- `# doc-test: needs TOOL` — skipped (reported as such) unless TOOL is on PATH.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLOCK_TIMEOUT_S = 300
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
RUNNABLE = {"sh", "bash", "shell", "console", "python"}
_FENCE = re.compile(r"^(\s*)(```+)\s*([\w+-]*)(.*)$")
_NOISE = re.compile(r"\|FAIL\|rdkafka#|Connection refused")  # librdkafka's log lines
_ANNOTATION = re.compile(r"doc-test:\s*(skip|background|start-stop|needs)\b\s*(.*)")


@dataclass
class Block:
    line: int  # where the block starts in the file (1-based, the fence line)
    language: str
    text: str
    mode: str = "run"
    detail: str = ""
    processes: list = field(default_factory=list)


def blocks_of(markdown: str) -> list[Block]:
    """Every fenced block, with its language and doc-test annotation."""
    found, lines, index = [], markdown.splitlines(), 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, start, body = match.group(2), index, []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index][len(match.group(1)):] if lines[index].startswith(match.group(1)) else lines[index])
            index += 1
        index += 1
        block = Block(start + 1, match.group(3).lower(), "\n".join(body) + "\n")
        annotation = _ANNOTATION.search(block.text)
        if annotation:
            block.mode, block.detail = annotation.group(1), annotation.group(2).strip().rstrip(")").lstrip("(")
        found.append(block)
    return found


def commands_of(block: Block) -> str:
    """The shell text a block runs (a console transcript's `$ ` lines only)."""
    if block.language != "console":
        return block.text
    commands, continuing = [], False
    for line in block.text.splitlines():
        if line.startswith("$ ") or continuing:
            commands.append(line[2:] if line.startswith("$ ") and not continuing else line)
            continuing = line.rstrip().endswith("\\")
    return "\n".join(commands) + "\n"


class Runner:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.sessions: list[tuple[Block, subprocess.Popen]] = []
        self.log_count = 0
        bin_dir = str(Path(sys.executable).parent)
        self.env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
                        PYTHONPATH=str(REPO / "src"), PYTHONUNBUFFERED="1")

    def start(self, block: Block, text: str) -> tuple[subprocess.Popen, Path]:
        self.log_count += 1
        log = self.workdir / f".doc-block-{self.log_count}.log"
        if block.language == "python":
            script = self.workdir / f".doc-block-{self.log_count}.py"
            script.write_text(text)
            argv = [sys.executable, str(script)]
        else:
            argv = ["bash", "-e", "-o", "pipefail", "-c", text]
        with open(log, "wb") as out:
            process = subprocess.Popen(argv, cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.sessions.append((block, process))
        return process, log

    def run(self, block: Block) -> dict:
        if block.language not in RUNNABLE:
            return {"status": "text"}
        if block.mode == "skip":
            return {"status": "skipped", "reason": block.detail} if block.detail else \
                {"status": "failed", "output": "doc-test: skip needs a reason: doc-test: skip (why)"}
        if block.mode == "needs" and shutil.which(block.detail.split()[0] if block.detail else "") is None:
            return {"status": "skipped", "reason": f"needs {block.detail}"}
        text = commands_of(block)
        if block.mode == "background":
            return self._background(block, text)
        if block.mode == "start-stop":
            return self._start_stop(block, text)
        process, log = self.start(block, text)
        try:
            code = process.wait(BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"status": "failed", "output": f"still running after {BLOCK_TIMEOUT_S} s\n" + _tail(log)}
        if code != 0:
            return {"status": "failed", "output": f"exit {code}\n" + _tail(log)}
        if _NOISE.search(log.read_text(errors="replace")):  # e.g. a client that outlives its broker
            return {"status": "failed", "output": "a Kafka client logged connection errors\n" + _tail(log)}
        return {"status": "ok"}

    def _background(self, block: Block, text: str) -> dict:
        process, log = self.start(block, text)
        if not _first_line(process, log):
            return {"status": "failed", "output": "no output, or it stopped at once\n" + _tail(log)}
        block.processes.append((process, log))
        return {"status": "background"}

    def _start_stop(self, block: Block, text: str) -> dict:
        for command in [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]:
            process, log = self.start(block, command)
            if not _first_line(process, log):
                return {"status": "failed", "output": f"{command}: did not come up\n" + _tail(log)}
            os.killpg(process.pid, signal.SIGTERM)
            try:
                code = process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                return {"status": "failed", "output": f"{command}: did not stop on SIGTERM\n" + _tail(log)}
            if code != 0:
                return {"status": "failed", "output": f"{command}: exit {code} after SIGTERM\n" + _tail(log)}
        return {"status": "ok"}

    def finish(self) -> list[dict]:
        """Stop everything the blocks left running; a background block that failed is reported."""
        problems = []
        for block, process in self.sessions:
            for background, log in block.processes:
                if background is process and process.poll() not in (None, 0):
                    problems.append({"line": block.line, "status": "failed",
                                     "output": f"background block exited {process.returncode}\n" + _tail(log)})
        for _block, process in reversed(self.sessions):
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for _block, process in self.sessions:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process.pid, signal.SIGKILL)
        return problems


def _first_line(process: subprocess.Popen, log: Path) -> bool:
    """Wait until the process printed a line; False if it exited first (or never printed)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if b"\n" in log.read_bytes():
            time.sleep(0.3)  # a failing command exits right after its one line
            return process.poll() is None
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def loopback_up() -> None:
    """A new network namespace starts with `lo` down: bring it up (SIOCGIFFLAGS/SIOCSIFFLAGS;
    on the host's own loopback, already up, this changes nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, 0x8913, request))[1]
        if not flags & 0x1:
            fcntl.ioctl(sock, 0x8914, struct.pack("16sH14s", b"lo", flags | 0x1, b""))


def prepare(workdir: Path) -> None:
    shutil.copytree(REPO / "config", workdir / "config")
    for name in ("benchmarks", "scripts", "src", "tests", "tools", "docs", "pyproject.toml", "README.md"):
        (workdir / name).symlink_to(REPO / name)


def main() -> None:
    markdown, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    loopback_up()
    prepare(workdir)
    runner = Runner(workdir)
    try:
        for block in blocks_of(markdown.read_text()):
            result = runner.run(block)
            print(json.dumps(dict(result, line=block.line, language=block.language)), flush=True)
    finally:
        for problem in runner.finish():
            print(json.dumps(problem), flush=True)


if __name__ == "__main__":
    main()
