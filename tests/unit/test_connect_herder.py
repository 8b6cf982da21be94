"""The standalone herder's lifecycle rules, with connectors that never touch the cluster."""

from __future__ import annotations

import collections

import pytest

from moldau.connect.api import ConnectError, SourceConnector, SourceTask
from moldau.connect.config import WORKER_CONFIG, ConfigDef, ConfigError
from moldau.connect.herder import ConflictError, NotFoundError, StandaloneHerder
from moldau.connect.offsets import OffsetStore
from moldau.connect.testing import wait_until

STARTS: collections.Counter = collections.Counter()


class IdleTask(SourceTask):
    def start(self, config):
        STARTS["task:" + config["name"]] += 1
        if config.get("task.fails") == "true":
            raise ConnectError("task start refused")

    def poll(self):
        self.context.stopping.wait(0.02)
        return None


class IdleConnector(SourceConnector):
    def config_def(self):
        return ConfigDef().define("mode", "string", "ok")

    def start(self, config):
        STARTS["connector:" + config["name"]] += 1
        if self.config_def().validate(config)["mode"] == "fail":  # start gets raw strings, as in Kafka
            raise ConnectError("connector start refused")
        self.config = config

    def task_class(self):
        return IdleTask

    def task_configs(self, max_tasks):
        return [dict(self.config, index=str(i)) for i in range(max_tasks)]


CLASS = f"{__name__}.IdleConnector"


@pytest.fixture
def herder(tmp_path):
    worker = WORKER_CONFIG.validate({"offset.storage.file.filename": str(tmp_path / "offsets"),
                                     "bootstrap.servers": "127.0.0.1:1", "producer.log_level": "0"})
    running = StandaloneHerder(worker, OffsetStore(str(tmp_path / "offsets")))
    yield running
    running.stop()


def states(herder, name):
    status = herder.connector_status(name)
    return status["connector"]["state"], [t["state"] for t in status["tasks"]]


def wait_states(herder, name, expected):
    return wait_until(lambda: states(herder, name), lambda s: s == expected, timeout_s=5, what=f"{name} {expected}")


def test_create_list_and_conflict(herder):
    assert herder.put_connector_config("a", {"connector.class": CLASS, "tasks.max": "2"}) is True
    wait_states(herder, "a", ("RUNNING", ["RUNNING", "RUNNING"]))
    assert herder.connector_names() == ["a"]
    assert [c["config"]["index"] for c in herder.task_configs("a")] == ["0", "1"]
    assert herder.task_configs("a")[0]["config"]["task.class"] == f"{__name__}.IdleTask"
    with pytest.raises(ConflictError, match="Connector a already exists"):
        herder.put_connector_config("a", {"connector.class": CLASS}, allow_replace=False)
    assert herder.put_connector_config("a", {"connector.class": CLASS, "tasks.max": "1"}) is False
    wait_states(herder, "a", ("RUNNING", ["RUNNING"]))


def test_bad_reconfiguration_leaves_the_running_connector_alone(herder):
    herder.put_connector_config("b", {"connector.class": CLASS})
    wait_states(herder, "b", ("RUNNING", ["RUNNING"]))
    before = STARTS["task:b"]
    with pytest.raises(ConfigError, match="tasks.max"):
        herder.put_connector_config("b", {"connector.class": CLASS, "tasks.max": "-1"})
    assert herder.connector_config("b")["connector.class"] == CLASS and "tasks.max" not in herder.connector_config("b")
    assert states(herder, "b") == ("RUNNING", ["RUNNING"]) and STARTS["task:b"] == before


def test_pause_resume(herder):
    herder.put_connector_config("p", {"connector.class": CLASS})
    wait_states(herder, "p", ("RUNNING", ["RUNNING"]))
    herder.pause("p")
    wait_states(herder, "p", ("PAUSED", ["PAUSED"]))
    herder.restart("p", include_tasks=True)  # a restart keeps the pause
    wait_states(herder, "p", ("PAUSED", ["PAUSED"]))
    herder.resume("p")
    wait_states(herder, "p", ("RUNNING", ["RUNNING"]))


def test_restart_flags(herder):
    herder.put_connector_config("r", {"connector.class": CLASS, "tasks.max": "2"})
    wait_states(herder, "r", ("RUNNING", ["RUNNING", "RUNNING"]))
    connectors, tasks = STARTS["connector:r"], STARTS["task:r"]
    herder.restart("r")  # the connector instance only
    assert (STARTS["connector:r"], STARTS["task:r"]) == (connectors + 1, tasks)
    herder.restart("r", only_failed=True)  # nothing failed: nothing restarts
    assert (STARTS["connector:r"], STARTS["task:r"]) == (connectors + 1, tasks)
    herder.restart("r", include_tasks=True)
    wait_states(herder, "r", ("RUNNING", ["RUNNING", "RUNNING"]))
    assert (STARTS["connector:r"], STARTS["task:r"]) == (connectors + 2, tasks + 2)
    herder.restart_task("r", 1)
    wait_states(herder, "r", ("RUNNING", ["RUNNING", "RUNNING"]))
    assert STARTS["task:r"] == tasks + 3
    with pytest.raises(NotFoundError, match="Task r-2 not found"):
        herder.restart_task("r", 2)


def test_failures_are_states_with_traces(herder):
    herder.put_connector_config("f", {"connector.class": CLASS, "mode": "fail"})
    status = herder.connector_status("f")
    assert status["connector"]["state"] == "FAILED" and "connector start refused" in status["connector"]["trace"]
    assert status["tasks"] == []
    herder.put_connector_config("t", {"connector.class": CLASS, "task.fails": "true"})
    wait_states(herder, "t", ("RUNNING", ["FAILED"]))
    assert herder.task_status("t", 0)["trace"] == "ConnectError: task start refused"
    herder.put_connector_config("f", {"connector.class": CLASS, "mode": "ok"})
    wait_states(herder, "f", ("RUNNING", ["RUNNING"]))


def test_delete_and_not_found(herder):
    herder.put_connector_config("d", {"connector.class": CLASS})
    herder.delete_connector("d")
    assert herder.connector_names() == []
    for call in (herder.connector_info, herder.connector_status, herder.pause, herder.delete_connector):
        with pytest.raises(NotFoundError, match="Connector d not found"):
            call("d")
