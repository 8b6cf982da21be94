"""Makes the `moldau` pytest plugin available when the package is not pip-installed
(running from a source tree); installed, its entry point registers it already.

Also guards the suite against a pytest that never exits. A confluent_kafka.Consumer that is
never closed is closed by its destructor, and that close waits for the group coordinator: once
the broker it talked to is gone (every test stops its brokers), it waits forever — at interpreter
exit if the consumer is still referenced then, or in whatever thread drops it, and Python's exit
waits for every non-daemon thread. A CI run printed "1251 passed" and then hung until the CI's
deadline, librdkafka logging a coordinator timeout every minute. So every consumer records the
test that made it; a consumer still open, or a non-daemon thread still running, when the session
ends fails the run with its origin, and the process exits with the session's status without the
interpreter's shutdown: after pytest's own cleanups, before the joins and destructors that hang.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import traceback
import weakref

import pytest

_current_test = "(outside any test)"
_made: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()
_leaked: list[str] = []
_exit_status: int | None = None
THREADS_GRACE_S = 30.0


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
    global _exit_status
    try:
        import confluent_kafka.cimpl as cimpl
    except ImportError:
        cimpl = None
    if cimpl is not None:
        gc.collect()
        for consumer in [o for o in gc.get_objects() if isinstance(o, cimpl.Consumer)]:
            if _is_open(consumer):
                _leaked.append("consumer never closed, made by "
                               + _made.get(consumer, "(code the tracker could not see)"))
    deadline = time.monotonic() + THREADS_GRACE_S
    frames = None
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            frames = frames if frames is not None else sys._current_frames()
            stack = "".join(traceback.format_stack(frames[thread.ident])[-6:]) if thread.ident in frames else ""
            _leaked.append(f"thread {thread.name!r} still running {THREADS_GRACE_S:g} s after the tests:\n{stack}")
    if _leaked:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    _exit_status = int(session.exitstatus)


def pytest_terminal_summary(terminalreporter):
    if _leaked:
        terminalreporter.section("left running after the tests (this fails the run)")
        for origin in _leaked:
            terminalreporter.write_line(origin)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if _exit_status is None:
        return
    # Not here: pytest's own cleanups run after this hook (config.add_cleanup: the Connect tests'
    # shared Kafka is stopped there). Python's shutdown first runs the callbacks registered with
    # threading._register_atexit (concurrent.futures uses it), before it joins non-daemon threads
    # and before the destructors that could hang.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_exit_now)


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
