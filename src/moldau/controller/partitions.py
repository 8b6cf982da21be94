"""Partition leadership and replica sets: the controller's pure decisions, as records.

Theory of operation. Every leadership or ISR change of a partition is one
PartitionChangeRecord, built here from the partition's image, the change wanted (a target ISR,
target replicas, an election) and which brokers may lead. `change_partition` is Kafka's
PartitionChangeBuilder, without eligible leader replicas (KIP-966 is off by default in Kafka 4):

- Election ONLINE keeps a leader that is still acceptable and in the target ISR, else takes the
  first replica (in preferred order) that is in the target ISR and acceptable; PREFERRED tries
  the first replica first; UNCLEAN may, when no in-sync replica can lead, take any acceptable
  replica (ISR becomes just it, leader recovery state RECOVERING) — only where the topic's
  unclean.leader.election.enable allows.
- No acceptable replica in the ISR: the leader becomes -1 (the partition is offline) and
  the ISR keeps its last members — it is never shrunk to empty, so the replica that comes back
  with all the data is the one that may lead again.
- A reassignment completes once every adding replica is in the ISR: the replicas become the
  target, removed replicas leave the ISR, and a removed leader is replaced.
- Any change that removes replicas bumps the leader epoch (a present leader field, even the same
  broker), so a removed replica's fetches are fenced.

Acceptable leader: registered, unfenced, not in controlled shutdown (BrokerImage.eligible_leader).
Functions return None when nothing would change.
"""

from __future__ import annotations

import uuid
from typing import Callable

from moldau.controller import records as r
from moldau.controller.image import BrokerImage, MetadataImage, PartitionImage

ONLINE, PREFERRED, UNCLEAN = "online", "preferred", "unclean"


def acceptable_leader(brokers: dict[int, BrokerImage]) -> Callable[[int], bool]:
    def check(broker_id: int) -> bool:
        broker = brokers.get(broker_id)
        return broker is not None and broker.eligible_leader

    return check


def change_partition(
    part: PartitionImage,
    acceptable: Callable[[int], bool],
    *,
    isr: tuple[int, ...] | None = None,
    replicas: tuple[int, ...] | None = None,
    adding: tuple[int, ...] | None = None,
    removing: tuple[int, ...] | None = None,
    election: str = ONLINE,
    recovery_state: int | None = None,
) -> r.PartitionChangeRecord | None:
    target_isr = tuple(part.isr if isr is None else isr)
    target_replicas = tuple(part.replicas if replicas is None else replicas)
    target_adding = tuple(part.adding_replicas if adding is None else adding)
    target_removing = tuple(part.removing_replicas if removing is None else removing)
    target_recovery = part.leader_recovery_state if recovery_state is None else recovery_state
    if target_adding and all(b in target_isr for b in target_adding):  # the reassignment is done
        target_replicas = tuple(b for b in target_replicas if b not in target_removing)
        target_isr = tuple(b for b in target_isr if b in target_replicas)
        target_adding = target_removing = ()
    leader = _elect(part, target_isr, target_replicas, acceptable, election)
    fields: dict = {}
    if leader is not None and leader != part.leader:
        fields["leader"] = leader
        if leader >= 0 and leader not in target_isr:  # unclean: the new leader is the whole ISR
            target_isr = (leader,)
            target_recovery = 1
    if "leader" not in fields and not set(part.replicas) <= set(target_replicas):
        fields["leader"] = part.leader  # removed replicas: a new leader epoch fences them
    if target_isr and target_isr != part.isr:
        fields["isr"] = target_isr
    if target_replicas != part.replicas:
        fields["replicas"] = target_replicas
    if target_adding != part.adding_replicas:
        fields["adding_replicas"] = target_adding
    if target_removing != part.removing_replicas:
        fields["removing_replicas"] = target_removing
    if target_recovery != part.leader_recovery_state:
        fields["leader_recovery_state"] = target_recovery
    if not fields:
        return None
    return r.PartitionChangeRecord(partition_id=part.partition, topic_id=uuid.UUID(part.topic_id), **fields)


def _elect(part: PartitionImage, isr: tuple[int, ...], replicas: tuple[int, ...],
           acceptable: Callable[[int], bool], election: str) -> int | None:
    """The leader the election picks (-1: none), or None to keep the current one."""

    def valid(broker: int) -> bool:
        return broker in isr and acceptable(broker)

    if election == PREFERRED and replicas and valid(replicas[0]):
        return replicas[0]
    if part.leader >= 0 and valid(part.leader) and part.leader in replicas:
        return None
    for broker in replicas:
        if valid(broker):
            return broker
    if election == UNCLEAN:
        for broker in replicas:
            if acceptable(broker):
                return broker
    return -1


def without_broker(part: PartitionImage, broker_id: int, acceptable: Callable[[int], bool],
                   unclean: bool) -> r.PartitionChangeRecord | None:
    """The change when `broker_id` is fenced or shuts down: out of the ISR (unless it is the last
    member), and a new leader if it led. Kafka's handleBrokerFenced / controlled shutdown."""
    isr = tuple(b for b in part.isr if b != broker_id) or part.isr
    return change_partition(part, acceptable, isr=isr, election=UNCLEAN if unclean else ONLINE)


def partitions_of_broker(image: MetadataImage, broker_id: int) -> list[PartitionImage]:
    """Every partition the broker leads or is in the ISR of, in (topic name, index) order."""
    found = []
    for name in sorted(image.topics_by_name):
        topic = image.topics_by_name[name]
        for index in sorted(topic.partitions):
            part = topic.partitions[index]
            if part.leader == broker_id or broker_id in part.isr:
                found.append(part)
    return found


def leaderless_partitions(image: MetadataImage) -> list[PartitionImage]:
    found = []
    for name in sorted(image.topics_by_name):
        topic = image.topics_by_name[name]
        found += [topic.partitions[i] for i in sorted(topic.partitions) if topic.partitions[i].leader < 0]
    return found


def imbalanced_partitions(image: MetadataImage, acceptable: Callable[[int], bool],
                          imbalance_percentage: int) -> list[PartitionImage]:
    """Partitions whose preferred leader (first replica) is in the ISR, acceptable and not
    leading, counted per preferred broker; a broker whose share of such partitions exceeds
    leader.imbalance.per.broker.percentage gets them all back (Kafka's auto leader rebalance)."""
    preferred_of: dict[int, list[PartitionImage]] = {}
    behind: dict[int, list[PartitionImage]] = {}
    for name in sorted(image.topics_by_name):
        topic = image.topics_by_name[name]
        for index in sorted(topic.partitions):
            part = topic.partitions[index]
            if not part.replicas:
                continue
            preferred = part.replicas[0]
            preferred_of.setdefault(preferred, []).append(part)
            if part.leader != preferred and preferred in part.isr and acceptable(preferred):
                behind.setdefault(preferred, []).append(part)
    chosen = []
    for broker in sorted(behind):
        if len(behind[broker]) * 100 > imbalance_percentage * len(preferred_of[broker]):
            chosen += behind[broker]
    return chosen
