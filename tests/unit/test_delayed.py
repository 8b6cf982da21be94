"""Delayed operations in the core: completion by append, expiry, and cancellation when the
client went away (nothing left watching)."""

import uuid

from moldau.broker import apis
from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.testing.node import committed, local_core
from moldau.log.memory_fs import MemoryFileSystem


def _core() -> BrokerCore:
    config = BrokerConfig()
    config.data_dir = "/data"
    return local_core(config, MemoryFileSystem(), uuid.uuid4, 1000)


def _delayed(results: list, ready: list) -> apis.Delayed:
    delayed = apis.Delayed(5000, lambda now: b"done" if ready else None, lambda now: b"expired", (("t", 0),))
    delayed.callback = results.append
    return delayed


def test_append_completes_and_unwatches():
    core, results, ready = _core(), [], []
    delayed = _delayed(results, ready)
    core.watch(delayed)
    core.partition_appended(("t", 0), 2000)
    assert results == [] and core.watchers
    ready.append(True)
    core.partition_appended(("t", 0), 2001)
    assert results == [b"done"] and not core.watchers


def test_expiry_answers_once():
    core, results = _core(), []
    delayed = _delayed(results, [])
    core.watch(delayed)
    core.expire(delayed, 5000)
    core.expire(delayed, 5001)
    assert results == [b"expired"] and not core.watchers


def test_cancel_forgets_without_answering():
    core, results = _core(), []
    delayed = _delayed(results, [True])
    core.watch(delayed)
    core.cancel(delayed)
    core.partition_appended(("t", 0), 2000)
    assert results == [] and not core.watchers
