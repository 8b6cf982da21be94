"""Render the client × API-version matrix into docs/compatibility.md from a test run.

    MOLDAU_COMPAT_REPORT=build/compatibility.json python -m pytest tests/integration
    python -m moldau.testing.compat_report build/compatibility.json docs/compatibility.md

The JSON (written by the pytest plugin) maps client label -> api key -> versions used. The
table replaces what stands between the `<!-- matrix:start -->` and `<!-- matrix:end -->`
markers of the document; the rest of the document is prose kept by hand.
"""

from __future__ import annotations

import json
import re
import sys

from kio.schema.index import api_key_map

import moldau.broker  # noqa: F401 - fills the API table
from moldau.broker import apis

START, END = "<!-- matrix:start -->", "<!-- matrix:end -->"


def _ranges(versions: list[int]) -> str:
    versions = sorted(set(versions))
    parts, start = [], None
    for i, v in enumerate(versions):
        if start is None:
            start = v
        if i + 1 == len(versions) or versions[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}–{v}")
            start = None
    return ", ".join(parts)


# Client ids and software names, collapsed to one column per client library.
_LABELS = (
    (re.compile(r"^aiokafka"), "aiokafka 0.14"),
    (re.compile(r"^kafka-python"), "kafka-python 3.0"),
    (re.compile(r"^confluent-kafka-python (\S+?)-rdkafka-(\S+)"), r"confluent-kafka \1 (librdkafka \2)"),
    (re.compile(r"^librdkafka 2\.0\.2"), "kcat 1.7 (librdkafka 2.0.2)"),
    (re.compile(r"^apache-kafka-java (\S+)"), r"Java client \1"),
    (re.compile(r"^kafkajs"), "KafkaJS 2.2"),
    (re.compile(r"^kgo v?(\S+)"), r"franz-go \1"),
    # franz-go sends ApiVersions once per broker, not per connection: its other connections
    # carry only the client id of tests/clients/go/franz (pinned to v1.22.3 by tests/clients/go/go.mod).
    (re.compile(r"^franz-go-workload"), "franz-go 1.22.3"),
    (re.compile(r"^sarama v?(\S+)"), r"Sarama \1 (Version 2.1.0)"),
    (re.compile(r"^sarama-workload"), "Sarama 1.61.1 (Version 2.1.0)"),
    (re.compile(r"^kafkago-workload"), "kafka-go 0.4.51"),
)


def _label(raw: str) -> str | None:
    """The client library behind a label, or None for our own raw test clients and fuzzers."""
    for pattern, label in _LABELS:
        match = pattern.search(raw)
        if match:
            return match.expand(label)
    return None


def render(usage: dict[str, dict[str, list[int]]]) -> str:
    merged: dict[str, dict[int, set[int]]] = {}
    for raw, by_api in usage.items():
        label = _label(raw)
        if label is None:
            continue
        for key, versions in by_api.items():
            merged.setdefault(label, {}).setdefault(int(key), set()).update(versions)
    clients = sorted(merged)
    header = "| API (key) | served | " + " | ".join(clients) + " |"
    lines = [header, "|" + "---|" * (len(clients) + 2)]
    for key in sorted(apis.REGISTRY):
        entry = apis.REGISTRY[key]
        served = _ranges(list(range(entry.advertised_min_version, entry.max_version + 1)))
        cells = [_ranges(list(merged[c].get(key, []))) or "—" for c in clients]
        name = api_key_map.get(key, str(key))
        lines.append(f"| {name} ({key}) | {served} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    source, document = argv
    with open(source, encoding="utf-8") as handle:
        table = render(json.load(handle))
    with open(document, encoding="utf-8") as handle:
        text = handle.read()
    if START not in text or END not in text:
        print(f"{document} has no {START} … {END} markers", file=sys.stderr)
        return 1
    before, rest = text.split(START, 1)
    _old, after = rest.split(END, 1)
    with open(document, "w", encoding="utf-8") as handle:
        handle.write(before + START + "\n" + table + "\n" + END + after)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
