"""The controller on one node: admin requests and broker lifecycles become Kafka-format metadata
records; leadership follows fencing, elections and reassignments; replay rebuilds the image."""

import uuid

import pytest
from kio.schema.errors import ErrorCode

from moldau.controller import partitions as pc
from moldau.controller import records as r
from moldau.controller.controller import ControllerError
from moldau.testing.node import LocalNode


def _node(brokers=(1,), num_partitions=2) -> LocalNode:
    node = LocalNode()
    node.core.controller.config.num_partitions = num_partitions
    for broker in brokers[1:]:
        register(node, broker)
    return node


def register(node: LocalNode, broker: int) -> int:
    """Register and unfence another broker, as its BrokerRegistration and first heartbeat would."""
    controller = node.core.controller
    endpoint = r.BrokerEndpoint(name="PLAINTEXT", host="127.0.0.1", port=9000 + broker, security_protocol=0)
    epoch = controller.brokers.register(broker, uuid.uuid4(), [endpoint], None, node.now_ms)
    node.pump()
    controller.brokers.heartbeat(broker, epoch, epoch, False, False, node.now_ms)
    node.pump()
    return epoch


def test_create_topic_records_and_image():
    node = _node()
    controller = node.core.controller
    topic = controller.create_topic("orders", 3, 1, {"retention.ms": "1000"})
    assert sorted(topic.partitions) == [0, 1, 2]
    assert all(p.leader == 1 and p.isr == (1,) and p.leader_epoch == 0 for p in topic.partitions.values())
    assert controller.image.topic_configs("orders") == {"retention.ms": "1000"}
    node.pump()
    assert node.core.image.topic("orders").topic_id == topic.topic_id  # committed and applied


def test_defaults_apply_for_minus_one():
    assert len(_node().core.controller.create_topic("t").partitions) == 2


@pytest.mark.parametrize("name", ["", "..", "a" * 250, "bad name", "bad/name"])
def test_invalid_topic_names(name):
    with pytest.raises(ControllerError) as caught:
        _node().core.controller.create_topic(name, 1, 1)
    assert caught.value.error_code == ErrorCode.invalid_topic_exception


def test_errors_for_duplicates_partitions_replication_and_configs():
    controller = _node().core.controller
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


def test_replicas_and_leaders_spread_over_unfenced_brokers():
    node = _node(brokers=(1, 2, 3))
    topic = node.core.controller.create_topic("rf3", 3, 3)
    assert sorted(p.leader for p in topic.partitions.values()) == [1, 2, 3]
    assert all(sorted(p.replicas) == [1, 2, 3] for p in topic.partitions.values())
    with pytest.raises(ControllerError) as caught:
        node.core.controller.create_topic("rf4", 1, 4)
    assert caught.value.error_code == ErrorCode.invalid_replication_factor
    assert "only 3 broker(s) are registered" in str(caught.value)


def test_the_metadata_log_replays_into_the_same_image_after_a_restart():
    node = _node()
    controller = node.core.controller
    controller.create_topic("t", 1, 1)
    controller.create_partitions("t", 4)
    with pytest.raises(ControllerError) as caught:
        controller.create_partitions("t", 2)
    assert caught.value.error_code == ErrorCode.invalid_partitions
    controller.alter_configs(2, "t", {"cleanup.policy": "compact"})
    controller.alter_configs(2, "t", {"cleanup.policy": None})
    controller.create_topic("gone", 1, 1)
    controller.delete_topic("gone")
    node.pump()
    topic_id = node.core.image.topic("t").topic_id
    node.restart()
    image = node.core.image
    assert sorted(image.topics_by_name) == ["t"]
    assert len(image.topic("t").partitions) == 4 and image.topic("t").topic_id == topic_id
    assert image.topic_configs("t") == {}
    assert 1 in image.brokers and not image.brokers[1].fenced


def test_records_are_kafkas_metadata_records():
    """Every record value is Kafka's ApiMessageAndVersion framing (frame version 1, api key,
    version), so Kafka's metadata decoder reads the log."""
    node = _node()
    node.core.controller.create_topic("t", 1, 1, {"retention.ms": "5"})
    node.pump()
    values = [value for _offset, value in node.core.raft.read_committed(0, 1000)]
    kinds = [r.decode(v).__class__.__name__ for v in values]
    assert {"RegisterBrokerRecord", "TopicRecord", "ConfigRecord", "PartitionRecord"} <= set(kinds)
    assert all(v[0] == 1 for v in values)  # frame version 1
    topic_record = next(v for v in values if r.decode(v).__class__ is r.TopicRecord)
    assert topic_record[1] == 2  # TopicRecord's api key


def test_fencing_a_broker_moves_its_leaderships_and_keeps_the_last_isr_member():
    node = _node(brokers=(1, 2, 3))
    controller = node.core.controller
    controller.create_topic("t", 3, 3)
    controller.create_topic("single", 1, 1, assignments={0: [2]})
    node.pump()
    controller.brokers.fence(2, node.now_ms)
    image = controller.image
    for part in image.topic("t").partitions.values():
        assert part.leader != 2 and 2 not in part.isr and part.leader in part.isr
    lonely = image.topic("single").partitions[0]
    assert lonely.leader == -1 and lonely.isr == (2,)  # offline, not emptied
    assert image.brokers[2].fenced


def test_an_unfenced_broker_takes_back_partitions_that_had_no_leader():
    node = _node(brokers=(1, 2))
    controller = node.core.controller
    controller.create_topic("single", 1, 1, assignments={0: [2]})
    controller.brokers.fence(2, node.now_ms)
    assert controller.image.topic("single").partitions[0].leader == -1
    controller.brokers.unfence(2, node.now_ms)
    part = controller.image.topic("single").partitions[0]
    assert part.leader == 2 and part.leader_epoch == 2


def test_a_broker_whose_session_expires_is_fenced_on_its_deadline():
    node = _node(brokers=(1, 2))
    controller = node.core.controller
    timeout = controller.config.broker_session_timeout_ms
    controller.create_topic("t", 1, 2, assignments={0: [2, 1]})
    node.pump()
    node.advance(timeout - 500)
    assert not controller.image.brokers[2].fenced  # node 1 heartbeats itself; 2 is quiet
    node.advance(1000)
    assert controller.image.brokers[2].fenced and not controller.image.brokers[1].fenced
    assert controller.image.topic("t").partitions[0].leader == 1


def test_a_session_that_expires_as_the_quorum_leadership_goes_fences_nothing_and_raises_nothing():
    """Cluster simulation seed 738: within one pass of a node's timers the quorum's leader
    resigned, then the still-active controller's session check tried to fence a broker; the
    metadata log refused the write and the error escaped the timers. The controller leaves the
    fencing to its successor."""
    node = _node(brokers=(1, 2))
    controller = node.core.controller
    timeout = controller.config.broker_session_timeout_ms
    node.advance(timeout - 500)

    class NotLeaderError(Exception):
        error_code = ErrorCode.not_leader_or_follower

    def refuse(values, now_ms):
        raise NotLeaderError("node 1 is not the leader (leader -1)")

    controller.metadata_log = type("Resigned", (), {"log_end_offset": controller.metadata_log.log_end_offset,
                                                    "append": staticmethod(refuse)})()
    controller.run_deadlines(node.now_ms + 1000)  # broker 2's session is over: no exception
    assert not controller.image.brokers[2].fenced
    error = ControllerError(ErrorCode.not_controller, "gone")
    import pickle
    assert pickle.loads(pickle.dumps(error)).error_code == ErrorCode.not_controller


def test_a_second_live_process_with_the_same_node_id_is_refused():
    node = _node(brokers=(1, 2))
    endpoint = r.BrokerEndpoint(name="PLAINTEXT", host="h", port=1, security_protocol=0)
    with pytest.raises(ControllerError) as caught:
        node.core.controller.brokers.register(2, uuid.uuid4(), [endpoint], None, node.now_ms)
    assert caught.value.error_code == ErrorCode.duplicate_broker_registration
    previous = node.core.controller.image.brokers[2].epoch  # the same broker after a clean shutdown
    node.core.controller.brokers.register(2, uuid.uuid4(), [endpoint], None, node.now_ms, previous)


def test_alter_partition_checks_epochs_and_eligibility():
    node = _node(brokers=(1, 2, 3))
    controller = node.core.controller
    controller.create_topic("t", 1, 3, assignments={0: [1, 2, 3]})
    part = controller.image.topic("t").partitions[0]
    epoch = controller.image.brokers[1].epoch
    shrunk = controller.alter_partition(1, epoch, "t", None, 0, part.leader_epoch, part.partition_epoch,
                                        [(1, epoch), (2, -1)], 0, node.now_ms)
    assert shrunk.isr == (1, 2) and shrunk.partition_epoch == part.partition_epoch + 1
    with pytest.raises(ControllerError) as stale:
        controller.alter_partition(1, epoch, "t", None, 0, part.leader_epoch, part.partition_epoch,
                                   [(1, epoch)], 0, node.now_ms)
    assert stale.value.error_code == ErrorCode.invalid_update_version
    controller.brokers.fence(3, node.now_ms)
    current = controller.image.topic("t").partitions[0]
    with pytest.raises(ControllerError) as ineligible:
        controller.alter_partition(1, epoch, "t", None, 0, current.leader_epoch, current.partition_epoch,
                                   [(1, epoch), (2, -1), (3, -1)], 0, node.now_ms)
    assert ineligible.value.error_code == ErrorCode.ineligible_replica


def test_preferred_election_and_unclean_election():
    node = _node(brokers=(1, 2, 3))
    controller = node.core.controller
    controller.create_topic("t", 1, 3, assignments={0: [2, 1, 3]})
    controller.brokers.fence(2, node.now_ms)
    assert controller.image.topic("t").partitions[0].leader == 1
    assert controller.elect_leaders("t", 0, pc.PREFERRED, node.now_ms) == ErrorCode.preferred_leader_not_available
    controller.brokers.unfence(2, node.now_ms)
    part = controller.image.topic("t").partitions[0]
    controller.alter_partition(1, controller.image.brokers[1].epoch, "t", None, 0, part.leader_epoch,
                               part.partition_epoch, [(1, -1), (3, -1), (2, controller.image.brokers[2].epoch)],
                               0, node.now_ms)
    assert controller.elect_leaders("t", 0, pc.PREFERRED, node.now_ms) == ErrorCode.none
    assert controller.image.topic("t").partitions[0].leader == 2
    assert controller.elect_leaders("t", 0, pc.PREFERRED, node.now_ms) == ErrorCode.election_not_needed
    controller.create_topic("u", 1, 1, assignments={0: [3]})
    controller.brokers.fence(3, node.now_ms)
    assert controller.image.topic("u").partitions[0].leader == -1
    assert controller.elect_leaders("u", 0, pc.UNCLEAN, node.now_ms) == ErrorCode.eligible_leaders_not_available


def test_reassignment_adds_then_removes_replicas():
    node = _node(brokers=(1, 2, 3))
    controller = node.core.controller
    controller.create_topic("t", 1, 2, assignments={0: [1, 2]})
    controller.reassign("t", 0, [3, 1], node.now_ms)
    part = controller.image.topic("t").partitions[0]
    assert part.replicas == (3, 1, 2) and part.adding_replicas == (3,) and part.removing_replicas == (2,)
    epoch = controller.image.brokers[1].epoch
    done = controller.alter_partition(1, epoch, "t", None, 0, part.leader_epoch, part.partition_epoch,
                                      [(1, epoch), (2, -1), (3, controller.image.brokers[3].epoch)], 0, node.now_ms)
    assert done.replicas == (3, 1) and done.isr == (1, 3) and not done.adding_replicas and not done.removing_replicas
    assert done.leader_epoch == part.leader_epoch + 1  # the removed replica is fenced by a new epoch


def test_producer_id_blocks_never_repeat():
    node = _node()
    controller = node.core.controller
    epoch = controller.image.brokers[1].epoch
    first = controller.allocate_producer_ids(1, epoch, node.now_ms)
    second = controller.allocate_producer_ids(1, epoch, node.now_ms)
    assert second[0] == first[0] + first[1]
    with pytest.raises(ControllerError) as caught:
        controller.allocate_producer_ids(1, epoch + 1000, node.now_ms)
    assert caught.value.error_code == ErrorCode.stale_broker_epoch


def test_a_fenced_broker_still_takes_replicas_when_too_few_are_alive():
    """Kafka's placer: __consumer_offsets with RF 3 is created while a node is down (the lab's
    console consumer after a kill); the dead node's replicas catch up when it returns."""
    node = _node(brokers=(1, 2, 3))
    controller = node.core.controller
    controller.brokers.fence(3, node.now_ms)
    topic = controller.create_topic("offsets-like", 6, 3)
    for part in topic.partitions.values():
        assert sorted(part.replicas) == [1, 2, 3]
        assert part.leader in (1, 2) and 3 not in part.isr and sorted(part.isr) == [1, 2]
    assert {p.leader for p in topic.partitions.values()} == {1, 2}
