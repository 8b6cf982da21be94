"""Controller and metadata image: admin requests become records; replay rebuilds the image."""

import uuid

import pytest
from kio.schema.errors import ErrorCode

from moldau.controller import records as r
from moldau.controller.controller import Controller, ControllerDefaults, ControllerError
from moldau.controller.image import MetadataImage


class ListMetadataLog:
    """The metadata log as a plain list (the real one is a partition log)."""

    def __init__(self):
        self.entries: list[bytes] = []

    def append(self, records):
        self.entries += [r.encode(record) for record in records]
        return len(self.entries) - 1

    def replay(self):
        return [r.decode(value) for value in self.entries]


def _controller(log=None, brokers=(1,)):
    counter = iter(range(1, 1000))
    controller = Controller(MetadataImage(), log or ListMetadataLog(), brokers[0],
                            lambda: uuid.UUID(int=next(counter)), ControllerDefaults(num_partitions=2))
    for broker in brokers:
        controller.node_id = broker
        controller.register_broker("127.0.0.1", 9000 + broker, None)
    controller.node_id = brokers[0]
    return controller


def test_create_topic_records_and_image():
    controller = _controller()
    topic = controller.create_topic("orders", 3, 1, {"retention.ms": "1000"})
    assert sorted(topic.partitions) == [0, 1, 2]
    assert all(p.leader == 1 and p.isr == (1,) and p.leader_epoch == 0 for p in topic.partitions.values())
    assert controller.image.topic_configs("orders") == {"retention.ms": "1000"}
    assert controller.image.topics_by_id[topic.topic_id] is topic


def test_defaults_apply_for_minus_one():
    controller = _controller()
    assert len(controller.create_topic("t").partitions) == 2


@pytest.mark.parametrize(
    "name, code",
    [("", ErrorCode.invalid_topic_exception), ("..", ErrorCode.invalid_topic_exception),
     ("a" * 250, ErrorCode.invalid_topic_exception), ("bad name", ErrorCode.invalid_topic_exception),
     ("bad/name", ErrorCode.invalid_topic_exception)],
)
def test_invalid_topic_names(name, code):
    with pytest.raises(ControllerError) as caught:
        _controller().create_topic(name, 1, 1)
    assert caught.value.error_code == code


def test_errors_for_duplicates_partitions_replication_and_configs():
    controller = _controller()
    controller.create_topic("a.b", 1, 1)
    cases = [
        (("a.b", 1, 1, {}), ErrorCode.topic_already_exists),
        (("a_b", 1, 1, {}), ErrorCode.invalid_topic_exception),  # collides with a.b
        (("x", 0, 1, {}), ErrorCode.invalid_partitions),
        (("x", 1, 3, {}), ErrorCode.invalid_replication_factor),  # one broker
        (("x", 1, 1, {"retention.ms": "soon"}), ErrorCode.invalid_config),
        (("x", 1, 1, {"no.such.config": "1"}), ErrorCode.invalid_config),
    ]
    for args, code in cases:
        with pytest.raises(ControllerError) as caught:
            controller.create_topic(*args)
        assert caught.value.error_code == code, args
    assert "x" not in controller.image.topics_by_name


def test_replication_factor_spreads_over_registered_brokers():
    controller = _controller(brokers=(1, 2, 3))
    topic = controller.create_topic("rf3", 3, 3)
    leaders = sorted(p.leader for p in topic.partitions.values())
    assert leaders == [1, 2, 3]
    assert all(sorted(p.replicas) == [1, 2, 3] for p in topic.partitions.values())


def test_create_partitions_delete_and_configs_then_replay():
    log = ListMetadataLog()
    controller = _controller(log)
    controller.create_topic("t", 1, 1)
    controller.create_partitions("t", 4)
    with pytest.raises(ControllerError) as caught:
        controller.create_partitions("t", 2)
    assert caught.value.error_code == ErrorCode.invalid_partitions
    controller.alter_configs(2, "t", {"cleanup.policy": "compact"})
    controller.alter_configs(2, "t", {"cleanup.policy": None})
    controller.create_topic("gone", 1, 1)
    controller.delete_topic("gone")
    replayed = Controller(MetadataImage(), log, 1, uuid.uuid4, ControllerDefaults())
    replayed.replay()
    image = replayed.image
    assert sorted(image.topics_by_name) == ["t"]
    assert len(image.topic("t").partitions) == 4
    assert image.topic_configs("t") == {}
    assert image.cluster_id == controller.image.cluster_id and 1 in image.brokers


def test_leader_change_bumps_epoch():
    controller = _controller(brokers=(1, 2))
    topic = controller.create_topic("t", 1, 2)
    old = topic.partitions[0]
    controller.commit([r.PartitionChangeRecord(topic.topic_id, 0, leader=old.replicas[1], isr=(old.replicas[1],))])
    new = controller.image.topic("t").partitions[0]
    assert new.leader_epoch == old.leader_epoch + 1 and new.isr == (old.replicas[1],)
