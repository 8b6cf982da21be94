"""A consumer group's committed offsets, for Moldau's own tools (CLI, console, Connect).

Read through a consumer handle of the group that never joins it, not with
AdminClient.list_consumer_group_offsets: librdkafka 2.16's admin path crashes the whole process
(it queues a coordinator query on the consumer-group handle an admin client does not have) when
OffsetFetch answers NOT_COORDINATOR, as every broker does while a group's coordinator moves
(confluentinc/librdkafka#5040).
"""

from __future__ import annotations

from typing import Any


def committed_offsets(client_config: dict[str, Any], group: str, timeout_s: float,
                      partitions: list | None = None) -> dict[tuple[str, int], int]:
    """{(topic, partition): committed offset} of `group` over `partitions` (TopicPartitions;
    default: every partition of every topic). Raises confluent_kafka.KafkaException."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**client_config, "group.id": group, "enable.auto.commit": False})
    try:
        if partitions is None:
            topics = consumer.list_topics(timeout=timeout_s).topics
            partitions = [TopicPartition(name, index) for name, topic in sorted(topics.items())
                          if topic.error is None for index in sorted(topic.partitions)]
        answered = consumer.committed(partitions, timeout=timeout_s) if partitions else []
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): tp.offset for tp in answered if tp.error is None and tp.offset >= 0}
