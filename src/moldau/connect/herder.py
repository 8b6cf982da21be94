"""The standalone herder: the connectors of one worker, their configs, states and tasks.

Theory of operation. Each connector is a `ConnectorRuntime`: its raw config (strings, as given),
the resolved class, a *target state* (STARTED or PAUSED, what the user asked for) and the
*actual* states of the connector and of its task runners (RUNNING, PAUSED, FAILED, UNASSIGNED).
Every change — create, reconfigure, pause, resume, restart, delete — happens under one lock and
is applied as "stop what runs, then start from the config", so there is one way to bring a
connector up. A config is validated in full before anything is stopped: a bad PUT leaves the
running connector as it was and returns every problem at once.

Failures are contained: a connector whose `start` raises, or a task that fails, is FAILED with
a readable `trace` (visible in `/status`), is logged once, and nothing else is affected. Nothing
restarts by itself; `POST /connectors/<name>/restart` (or a new config) does.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka

from moldau import group_offsets
from moldau.connect.api import ConnectError, Connector, ConnectorContext, SinkConnector
from moldau.connect.config import CONNECTOR_CONFIG, ConfigError, converter_settings, sink_topics_check
from moldau.connect.converters import Converter
from moldau.connect.data import DataError
from moldau.connect.offsets import OffsetFileError
from moldau.connect.plugins import connector_class, connector_type, converter_class
from moldau.connect.worker import SinkTaskRunner, SourceTaskRunner, TaskRunner, client_base, log


class NotFoundError(LookupError):
    """No connector (or task) of that name: REST 404."""


class ConflictError(RuntimeError):
    """The connector exists already: REST 409."""


@dataclass
class ConnectorRuntime:
    name: str
    config: dict[str, str]
    cls: type[Connector]
    target: str = "STARTED"
    state: str = "UNASSIGNED"
    trace: str | None = None
    connector: Connector | None = None
    task_configs: list[dict[str, str]] = field(default_factory=list)
    tasks: list[TaskRunner] = field(default_factory=list)

    @property
    def type(self) -> str:
        return connector_type(self.cls)

    @property
    def version(self) -> str:
        try:
            return str((self.connector or self.cls()).version())
        except Exception:  # a user connector that cannot say: status must still answer
            return "unknown"


def validate_connector_config(raw: dict[str, Any]) -> tuple[type[Connector] | None, list[str]]:
    """All problems of a connector config, in the order a user reads the file."""
    values, errors = CONNECTOR_CONFIG.parse(raw)
    cls = None
    if raw.get("connector.class"):
        try:
            cls = connector_class(str(raw["connector.class"]).strip())
        except ConfigError as error:
            errors.extend(error.errors)
    if cls is not None:
        instance = cls()
        typed, class_errors = instance.config_def().parse(raw)
        errors.extend(class_errors)
        if issubclass(cls, SinkConnector):
            errors.extend(sink_topics_check(raw))
        if not class_errors:
            errors.extend(instance.validate(typed))
    for which in ("key.converter", "value.converter"):
        if raw.get(which):
            try:
                make_converter(str(raw[which]).strip(), converter_settings(raw, which), which == "key.converter")
            except ConfigError as error:
                errors.extend(error.errors)
    return cls, errors


def make_converter(class_name: str, settings: dict[str, str], is_key: bool) -> Converter:
    converter = converter_class(class_name)()
    try:
        converter.configure(settings, is_key)
    except DataError as error:
        raise ConfigError(f"{'key' if is_key else 'value'}.converter: {error}") from None
    return converter


def sink_group_offsets(worker_config: dict[str, Any], group: str) -> dict[tuple[str, int], int]:
    """Committed offsets of a consumer group, by (topic, partition)."""
    try:
        return group_offsets.committed_offsets(client_base(worker_config, "connect-offsets"), group, 15)
    except confluent_kafka.KafkaException as error:
        raise ConnectError(f"cannot read the offsets of consumer group {group}: {error}") from None


def invalid_config_message(errors: list[str]) -> str:
    return (f"Connector configuration is invalid and contains the following {len(errors)} error(s):\n"
            + "\n".join(errors)
            + "\nYou can also find the above list of errors at the endpoint "
              "`/connector-plugins/{connectorType}/config/validate`")


class StandaloneHerder:
    def __init__(self, worker_config: dict[str, Any], offset_store):
        self.worker_config = worker_config
        self.offset_store = offset_store
        self.worker_id = "127.0.0.1"
        self._lock = threading.RLock()
        self._connectors: dict[str, ConnectorRuntime] = {}

    # --- queries -----------------------------------------------------------------------------

    def connector_names(self) -> list[str]:
        with self._lock:
            return sorted(self._connectors)

    def _get(self, name: str) -> ConnectorRuntime:
        runtime = self._connectors.get(name)
        if runtime is None:
            raise NotFoundError(f"Connector {name} not found")
        return runtime

    def connector_info(self, name: str) -> dict[str, Any]:
        with self._lock:
            runtime = self._get(name)
            return {"name": name, "config": dict(runtime.config),
                    "tasks": [{"connector": name, "task": i} for i in range(len(runtime.task_configs))],
                    "type": runtime.type}

    def connector_config(self, name: str) -> dict[str, str]:
        with self._lock:
            return dict(self._get(name).config)

    def task_configs(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            runtime = self._get(name)
            return [{"id": {"connector": name, "task": i}, "config": dict(c)}
                    for i, c in enumerate(runtime.task_configs)]

    def connector_offsets(self, name: str) -> dict[str, Any]:
        """GET /connectors/{name}/offsets (KIP-875): source offsets from the offsets file, sink
        offsets from the consumer group `connect-<name>`."""
        with self._lock:
            kind = self._get(name).type
        if kind == "source":
            entries = self.offset_store.offsets_of(name)
            return {"offsets": [{"partition": p, "offset": o} for p, o in entries]}
        committed = sink_group_offsets(self.worker_config, f"connect-{name}")
        return {"offsets": [{"partition": {"kafka_topic": t, "kafka_partition": p}, "offset": {"kafka_offset": o}}
                            for (t, p), o in sorted(committed.items())]}

    def connector_status(self, name: str) -> dict[str, Any]:
        with self._lock:
            runtime = self._get(name)
            connector = {"state": runtime.state, "worker_id": self.worker_id, "version": runtime.version}
            if runtime.trace:
                connector["trace"] = runtime.trace
            return {"name": name, "connector": connector,
                    "tasks": [self._task_status(t) for t in runtime.tasks], "type": runtime.type}

    def task_status(self, name: str, task_id: int) -> dict[str, Any]:
        with self._lock:
            return self._task_status(self._task(name, task_id))

    def _task_status(self, runner: TaskRunner) -> dict[str, Any]:
        status = {"id": runner.task_id, "state": runner.state, "worker_id": self.worker_id, "version": runner.version}
        if runner.trace:
            status["trace"] = runner.trace
        return status

    def _task(self, name: str, task_id: int) -> TaskRunner:
        runtime = self._get(name)
        if not 0 <= task_id < len(runtime.tasks):
            raise NotFoundError(f"Task {name}-{task_id} not found")
        return runtime.tasks[task_id]

    # --- changes -----------------------------------------------------------------------------

    def put_connector_config(self, name: str, raw: dict[str, Any], allow_replace: bool = True) -> bool:
        """Create or reconfigure `name`; True when it was created. Raises ConfigError or ConflictError."""
        config = {str(k): "" if v is None else str(v) for k, v in raw.items()}
        if config.get("name", name) != name:
            raise ConfigError(f"Connector name configuration ({config['name']}) doesn't match connector name "
                              f"in the URL ({name})")
        config["name"] = name
        cls, errors = validate_connector_config(config)
        if errors:
            raise ConfigError(invalid_config_message(errors))
        with self._lock:
            existing = self._connectors.get(name)
            if existing is not None and not allow_replace:
                raise ConflictError(f"Connector {name} already exists")
            target = existing.target if existing else "STARTED"
            if existing is not None:
                self._stop(existing)
            runtime = ConnectorRuntime(name, config, cls, target=target)
            self._connectors[name] = runtime
            self._start(runtime)
            return existing is None

    def delete_connector(self, name: str) -> None:
        with self._lock:
            runtime = self._get(name)
            self._stop(runtime)
            del self._connectors[name]
            log(f"connector {name} deleted")

    def pause(self, name: str) -> None:
        with self._lock:
            runtime = self._get(name)
            runtime.target = "PAUSED"
            if runtime.state == "RUNNING":
                runtime.state = "PAUSED"
            for runner in runtime.tasks:
                runner.pause()

    def resume(self, name: str) -> None:
        with self._lock:
            runtime = self._get(name)
            runtime.target = "STARTED"
            if runtime.state == "PAUSED":
                runtime.state = "RUNNING"
            for runner in runtime.tasks:
                runner.resume()

    def restart(self, name: str, include_tasks: bool = False, only_failed: bool = False) -> None:
        """Kafka's restart (KIP-745): the connector instance (only if FAILED with `only_failed`), plus
        all tasks (`include_tasks`) or only the FAILED ones (both flags). A connector instance that
        comes back with different task configs restarts its tasks too."""
        with self._lock:
            runtime = self._get(name)
            restart_connector = not only_failed or runtime.state == "FAILED"
            if include_tasks:
                task_ids = [i for i, t in enumerate(runtime.tasks) if not only_failed or t.state == "FAILED"]
            else:
                task_ids = []
            if restart_connector and (runtime.state == "FAILED" or not runtime.tasks
                                      or len(task_ids) == len(runtime.tasks)):
                self._stop(runtime)
                self._start(runtime)
                return
            if restart_connector and self._restart_connector_instance(runtime):
                return
            for task_id in task_ids:
                self._restart_task(runtime, task_id)

    def _restart_connector_instance(self, runtime: ConnectorRuntime) -> bool:
        """Replace the Connector object, keeping the tasks; True when the tasks had to restart too."""
        if runtime.connector is not None:
            try:
                runtime.connector.stop()
            except Exception as error:
                log(f"connector {runtime.name}: stop() raised {error!r}")
        try:
            connector = runtime.cls()
            connector.context = ConnectorContext(runtime.name)
            connector.start(dict(runtime.config))
            tasks_max = int(runtime.config.get("tasks.max", "1"))
            task_class = connector.task_class()
            configs = [self._with_topics(runtime, dict(c), task_class)
                       for c in connector.task_configs(tasks_max)][:tasks_max]
        except Exception as error:  # tasks keep running, as in Kafka; the connector shows FAILED
            runtime.connector, runtime.state = None, "FAILED"
            runtime.trace = "".join(traceback.format_exception(error)).rstrip()
            log(f"connector {runtime.name} failed to restart: {error}")
            return False
        if configs != runtime.task_configs:
            connector.stop()
            self._stop(runtime)
            self._start(runtime)
            return True
        runtime.connector, runtime.trace = connector, None
        runtime.state = "PAUSED" if runtime.target == "PAUSED" else "RUNNING"
        return False

    def restart_task(self, name: str, task_id: int) -> None:
        with self._lock:
            runtime = self._get(name)
            self._task(name, task_id)
            self._restart_task(runtime, task_id)

    def stop(self) -> None:
        """Stop every connector (their last offset commits included)."""
        with self._lock:
            for runtime in self._connectors.values():
                for runner in runtime.tasks:
                    runner.task.context.stopping.set()  # all at once, then wait for each
            for name in sorted(self._connectors):
                self._stop(self._connectors[name])

    # --- lifecycle ---------------------------------------------------------------------------

    def _start(self, runtime: ConnectorRuntime) -> None:
        runtime.trace = None
        try:
            if runtime.type == "source":
                self.offset_store.open()  # OffsetFileError: this connector fails, naming the file
            connector = runtime.cls()
            connector.context = ConnectorContext(runtime.name)
            connector.start(dict(runtime.config))
            runtime.connector = connector
            tasks_max = int(runtime.config.get("tasks.max", "1"))
            task_configs = [dict(c) for c in connector.task_configs(tasks_max)][:tasks_max]
            task_class = connector.task_class()
            runtime.task_configs = [self._with_topics(runtime, c, task_class) for c in task_configs]
            runtime.tasks = [self._new_runner(runtime, i) for i in range(len(runtime.task_configs))]
        except Exception as error:
            runtime.state = "FAILED"
            runtime.trace = (f"{type(error).__name__}: {error}" if isinstance(error, OffsetFileError)
                             else "".join(traceback.format_exception(error)).rstrip())
            runtime.tasks = []
            log(f"connector {runtime.name} failed to start: {error}")
            return
        runtime.state = "PAUSED" if runtime.target == "PAUSED" else "RUNNING"
        for runner in runtime.tasks:
            runner.start(paused=runtime.target == "PAUSED")
        log(f"connector {runtime.name} ({runtime.type}) started with {len(runtime.tasks)} task(s)")

    @staticmethod
    def _with_topics(runtime: ConnectorRuntime, task_config: dict[str, str], task_class: type) -> dict[str, str]:
        """Kafka adds `task.class`, and for sinks the topics, to every task config."""
        merged = dict(task_config)
        merged["task.class"] = getattr(task_class, "KAFKA_CLASS", f"{task_class.__module__}.{task_class.__qualname__}")
        if runtime.type == "sink":
            for key in ("topics", "topics.regex"):
                if runtime.config.get(key) and key not in task_config:
                    merged[key] = runtime.config[key]
        return merged

    def _new_runner(self, runtime: ConnectorRuntime, task_id: int) -> TaskRunner:
        task = runtime.connector.task_class()()
        key_converter, value_converter = self._converters(runtime.config)
        args = (runtime.name, task_id, task, runtime.task_configs[task_id], self.worker_config,
                key_converter, value_converter)
        if runtime.type == "source":
            return SourceTaskRunner(*args, offset_store=self.offset_store)
        return SinkTaskRunner(*args)

    def _converters(self, config: dict[str, str]) -> tuple[Converter, Converter]:
        pair = []
        for which in ("key.converter", "value.converter"):
            source = config if config.get(which) else self.worker_config
            settings = converter_settings(source, which)
            pair.append(make_converter(str(source[which]).strip(), settings, which == "key.converter"))
        return pair[0], pair[1]

    def _restart_task(self, runtime: ConnectorRuntime, task_id: int) -> None:
        timeout_s = self.worker_config["task.shutdown.graceful.timeout.ms"] / 1000
        runtime.tasks[task_id].stop(timeout_s)
        runner = self._new_runner(runtime, task_id)
        runtime.tasks[task_id] = runner
        runner.start(paused=runtime.target == "PAUSED")

    def _stop(self, runtime: ConnectorRuntime) -> None:
        timeout_s = self.worker_config["task.shutdown.graceful.timeout.ms"] / 1000
        for runner in runtime.tasks:
            runner.task.context.stopping.set()
        for runner in runtime.tasks:
            runner.stop(timeout_s)
        runtime.tasks = []
        if runtime.connector is not None:
            try:
                runtime.connector.stop()
            except Exception as error:
                log(f"connector {runtime.name}: stop() raised {error!r}")
            runtime.connector = None
        runtime.state = "UNASSIGNED"
