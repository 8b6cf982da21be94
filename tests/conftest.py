"""Makes the `moldau` pytest plugin available when the package is not pip-installed
(running from a source tree); installed, its entry point registers it already.

Also guards the suite against leaked librdkafka consumers. A confluent_kafka.Consumer that is
never closed is closed by its destructor, and that close waits for the group coordinator: once
the broker it talked to is gone (every test stops its brokers), it waits forever. If the consumer
is still referenced when the tests end, the destructor runs at interpreter exit and pytest never
exits (a CI run printed "1251 passed" and then hung, librdkafka logging a coordinator timeout
every minute). So every consumer records the test that made it; a consumer still open when the
session ends fails the run with that test's name, and the process exits without running the
destructors that would hang.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
import weakref

import pytest

_current_test = "(outside any test)"
_made: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()
_leaked: list[str] = []


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("moldau"):
        import moldau.testing.pytest_plugin as plugin

        config.pluginmanager.register(plugin, "moldau")
    _track_consumers()


def _track_consumers() -> None:
    try:
        import confluent_kafka
    except ImportError:
        return
    original = confluent_kafka.Consumer
    if getattr(original, "_moldau_tracked", False):
        return

    class Consumer(original):  # type: ignore[misc, valid-type]
        _moldau_tracked = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            frames = [f for f in traceback.extract_stack()[:-1]
                      if not f.filename.startswith("<") and "site-packages" not in f.filename
                      and "/_pytest/" not in f.filename]
            where = "".join(traceback.format_list(frames[-4:]))
            _made[self] = f"{_current_test}\n{where}"

    Consumer.__name__ = Consumer.__qualname__ = original.__name__
    confluent_kafka.Consumer = Consumer


def _is_open(consumer) -> bool:
    try:
        consumer.assignment()
    except RuntimeError:  # "Consumer closed"
        return False
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _current_test
    _current_test = item.nodeid
    yield
    _current_test = "(outside any test)"


def pytest_sessionfinish(session, exitstatus):
    try:
        import confluent_kafka.cimpl as cimpl
    except ImportError:
        return
    gc.collect()
    for consumer in [o for o in gc.get_objects() if isinstance(o, cimpl.Consumer)]:
        if _is_open(consumer):
            _leaked.append(_made.get(consumer, "(made where the tracker could not see)"))
    if _leaked:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _leaked:
        terminalreporter.section("librdkafka consumers never closed")
        for origin in _leaked:
            terminalreporter.write_line(f"made by {origin}")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if _leaked:
        # Their destructors would wait forever for a coordinator that is gone.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(pytest.ExitCode.TESTS_FAILED))
