"""Every code block of README.md and docs/*.md runs, so the docs cannot rot.

Each file's blocks run in order (tests/integration/docs_runner.py: what runs, and the
`# doc-test: skip (why)` / `background` / `start-stop` / `needs TOOL` annotations a block can
carry) inside a private user, network and PID namespace (`unshare`): the docs' own ports (9092,
8083, 8080) are free there whatever runs on the machine, and everything a block started dies
with the namespace. A new doc needs nothing more than runnable blocks, or annotated ones."""

from __future__ import annotations

import json
import socket
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moldau.testing.tools import need

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("docs_runner.py")
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FILE_TIMEOUT_S = 900
DOC_PORTS = (9092, 8083, 8080, 9404)  # what the docs' commands listen on by default


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rn", "--pid", "--fork", "--kill-child", "--mount-proc", "true"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


def _ports_free() -> bool:
    for port in DOC_PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_code_blocks_run(doc, tmp_path):
    if _namespaces_work():
        isolation = ["unshare", "-rn", "--pid", "--fork", "--kill-child", "--mount-proc"]
    else:  # e.g. a container without user namespaces: run on the host's loopback, if it is free
        need(_ports_free(), f"unshare with user/network/PID namespaces, or free ports {DOC_PORTS}")
        isolation = []
    result = subprocess.run([*isolation, sys.executable, str(RUNNER), str(doc), str(tmp_path)],
                            capture_output=True, text=True, timeout=FILE_TIMEOUT_S)
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    failed = [r for r in reports if r["status"] == "failed"]
    summary = "\n".join(f"{doc.name}:{r['line']}: {r['status']} {r.get('reason', '')}" for r in reports)
    print(summary)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not failed, "\n\n".join(f"{doc.name}:{r['line']} ({r.get('language', '?')}):\n{r['output']}"
                                    for r in failed)


def test_annotations_are_understood():
    sys.path.insert(0, str(RUNNER.parent))
    from docs_runner import blocks_of, commands_of

    blocks = blocks_of("text\n\n```sh\nmoldau server   # doc-test: background\n```\n\n"
                       "```python\n# doc-test: skip (installs things)\nimport x\n```\n\n"
                       "```console\n$ echo a \\\n    b\na b\n```\n\n```\nusage\n```\n")
    assert [(b.line, b.language, b.mode, b.detail) for b in blocks] == [
        (3, "sh", "background", ""), (7, "python", "skip", "installs things"), (12, "console", "run", ""),
        (18, "", "run", "")]
    assert commands_of(blocks[2]) == "echo a \\\n    b\n"
