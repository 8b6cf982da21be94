"""kcat (Debian's, librdkafka 2.0.2) against moldau: auto-create, produce, consume, codecs.

kcat talks Metadata v4 and Produce v7; its librdkafka fails on some ApiVersions v3 tagged
field combinations, so this test is the guard on that response's shape.
"""

import subprocess

import pytest

from moldau import Broker
from moldau.testing.tools import need_executable

KEYS = 97


def _lines(count: int) -> str:
    return "".join(f"key-{i % KEYS}:value-{i}\n" for i in range(count))


def _kcat(*args, input=None, timeout=60):
    return subprocess.run([need_executable("kcat"), *args], input=input, capture_output=True, text=True,
                          timeout=timeout)


def test_kcat_auto_creates_produces_and_consumes_10000_keyed(tmp_path):
    with Broker(data_dir=str(tmp_path), config={"num.partitions": "3"}) as broker:
        _produce_and_consume_10000(broker.bootstrap_servers)


def _produce_and_consume_10000(bootstrap):
    produced = _kcat("-b", bootstrap, "-P", "-t", "kcat-orders", "-K", ":", "-H", "source=kcat",
                     input=_lines(10_000))
    assert produced.returncode == 0, produced.stderr
    consumed = _kcat("-b", bootstrap, "-C", "-t", "kcat-orders", "-o", "beginning", "-e", "-q",
                     "-f", "%p %o %k %s %h\n")
    assert consumed.returncode == 0, consumed.stderr
    rows = [line.split(" ") for line in consumed.stdout.splitlines()]
    assert len(rows) == 10_000
    partitions: dict[str, list[tuple[int, int]]] = {}
    for partition, offset, key, value, headers in rows:
        assert headers == "source=kcat" and value.startswith("value-")
        assert int(value.split("-")[1]) % KEYS == int(key.split("-")[1])
        partitions.setdefault(partition, []).append((int(offset), int(value.split("-")[1])))
    assert len(partitions) == 3
    for entries in partitions.values():
        assert entries == sorted(entries), "per-partition order"
        assert [o for o, _ in entries] == list(range(len(entries)))


def test_kcat_metadata_list(moldau_broker):
    listing = _kcat("-b", moldau_broker.bootstrap_servers, "-L", "-t", "listed")
    assert listing.returncode == 0, listing.stderr
    assert 'topic "listed" with 1 partitions' in listing.stdout


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kcat_compression_round_trip(moldau_broker, codec):
    bootstrap = moldau_broker.bootstrap_servers
    topic = f"kcat-{codec}"
    produced = _kcat("-b", bootstrap, "-P", "-t", topic, "-z", codec, "-K", ":", input=_lines(1000))
    assert produced.returncode == 0, produced.stderr
    consumed = _kcat("-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n")
    assert consumed.stdout.splitlines() == [f"value-{i}" for i in range(1000)]
