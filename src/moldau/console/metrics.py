"""The console's view of Moldau nodes' /metrics: totals across nodes, sizes per partition.

Theory of operation. A Moldau node that serves metrics reports its `metrics.port` among its
broker configs (DescribeConfigs), so the console finds each node's endpoint by itself; with
`--metrics-url` the user names endpoints explicitly (and a Kafka cluster has none: the console
then shows what the Kafka protocol tells, and says that byte rates are not offered).
`scrape_all` fetches every endpoint with a short timeout and parses the page with
prometheus_client's parser into a `Scrape`: per-node counters summed across the cluster and
log sizes per partition (a partition's size is its leader's, the largest replica otherwise).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

SCRAPE_TIMEOUT_S = 2.0
_TOTALS = {
    "moldau_topic_bytes_in_total": "bytes_in",
    "moldau_topic_records_in_total": "records_in",
    "moldau_topic_bytes_out_total": "bytes_out",
    "moldau_topic_records_out_total": "records_out",
}


@dataclass
class Scrape:
    totals: dict[str, float] = field(default_factory=dict)  # bytes_in, records_in, ... over all topics
    by_topic: dict[str, dict[str, float]] = field(default_factory=dict)
    sizes: dict[tuple[str, int], int] = field(default_factory=dict)
    nodes: dict[str, bool] = field(default_factory=dict)  # url -> answered


def scrape_all(urls: list[str]) -> Scrape:
    scrape = Scrape()
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
                text = response.read().decode("utf-8", errors="replace")
        except (OSError, urllib.error.URLError, ValueError):
            scrape.nodes[url] = False
            continue
        scrape.nodes[url] = True
        _add(scrape, text)
    return scrape


def _add(scrape: Scrape, text: str) -> None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in _TOTALS:
                what = _TOTALS[sample.name]
                scrape.totals[what] = scrape.totals.get(what, 0.0) + sample.value
                topic = scrape.by_topic.setdefault(sample.labels.get("topic", ""), {})
                topic[what] = topic.get(what, 0.0) + sample.value
            elif sample.name == "moldau_log_size_bytes":
                key = (sample.labels.get("topic", ""), int(sample.labels.get("partition", "-1")))
                scrape.sizes[key] = max(scrape.sizes.get(key, 0), int(sample.value))
