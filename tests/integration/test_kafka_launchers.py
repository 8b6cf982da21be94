"""Kafka's own tools, the way the README tells users to run them: scripts/fetch-kafka.sh writes
bin/kafka-*.sh launchers beside the jars and says where; they run against a Moldau broker."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

import moldau
from moldau.testing.kafka_dist import kafka_home, kafka_libs, need_kafka
from moldau.testing.kafka_tools import TOOL_CLASSES

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    need_kafka()
    fetched = subprocess.run(["bash", str(REPO / "scripts" / "fetch-kafka.sh")], capture_output=True, text=True,
                             timeout=600)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == str(kafka_libs())
    bin_dir = kafka_home() / "bin"
    assert f"Kafka's tools are in {bin_dir}" in fetched.stderr
    return bin_dir


def test_every_launcher_names_a_class_in_the_jars(bin_dir):
    classes = set()
    for jar in kafka_libs().glob("*.jar"):
        with zipfile.ZipFile(jar) as archive:
            classes.update(name for name in archive.namelist() if name.endswith(".class"))
    for tool, main_class in sorted(TOOL_CLASSES.items()):
        assert main_class.replace(".", "/") + ".class" in classes, tool
        launcher = bin_dir / f"{tool}.sh"
        assert launcher.stat().st_mode & 0o111 and main_class in launcher.read_text()


def test_readme_flow_with_kafkas_console_tools(bin_dir):
    with moldau.Broker() as broker:
        bootstrap = ["--bootstrap-server", broker.bootstrap_servers]

        def run(tool: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
            return subprocess.run([str(bin_dir / f"{tool}.sh"), *bootstrap, *args], input=stdin, capture_output=True,
                                  text=True, timeout=120)

        created = run("kafka-topics", "--create", "--topic", "quickstart-events", "--partitions", "3")
        assert created.returncode == 0 and "Created topic quickstart-events" in created.stdout, created.stderr
        produced = run("kafka-console-producer", "--topic", "quickstart-events", stdin="first\nsecond\n")
        assert produced.returncode == 0, produced.stderr
        consumed = run("kafka-console-consumer", "--topic", "quickstart-events", "--from-beginning",
                       "--max-messages", "2", "--timeout-ms", "30000")
        assert sorted(consumed.stdout.split()) == ["first", "second"], consumed.stderr


def test_fetch_errors_reach_ci_logs_without_colour_codes(tmp_path):
    """Maven 3.8 writes ANSI colour codes even in batch mode; fetch-kafka.sh strips them."""
    import shutil

    from moldau.testing.tools import need

    need(shutil.which("mvn") is not None and shutil.which("java") is not None, "Maven and Java")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "tools" / "kafka").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "fetch-kafka.sh", tmp_path / "scripts")
    (tmp_path / "tools" / "kafka" / "pom.xml").write_text(
        "<project><properties><kafka.version>0.0.0</kafka.version></properties><broken></project>\n")
    result = subprocess.run(["bash", str(tmp_path / "scripts" / "fetch-kafka.sh")], capture_output=True, text=True,
                            timeout=120, env={**__import__("os").environ, "MOLDAU_KAFKA_HOME": str(tmp_path / "home")})
    assert result.returncode != 0 and "[ERROR]" in result.stderr
    assert "\x1b[" not in result.stderr
