"""Consumer groups (classic protocol), committed offsets, producer ids, and transactions.

`install(core)` is called once by BrokerCore.__init__ and registers, in `core.extensions`:
- "group_coordinator": coordinator.GroupCoordinator (classic groups in `__consumer_offsets`),
- "consumer_group_coordinator": consumer_coordinator.ConsumerGroupCoordinator (KIP-848 groups),
- "producer_state": log.producer_state.ProducerStateExtension (produce.py's idempotence checks),
- "producer_ids": producer_ids.ProducerIdManager (InitProducerId).
- "txn_coordinator": transactions.TransactionCoordinator (transactional ids in `__transaction_state`).
Each one's `tick(now_ms)` runs from the core's periodic tick.
"""

from __future__ import annotations

from typing import Any


def install(core: Any) -> None:
    from moldau.coordinator.consumer_config import ConsumerGroupSettings
    from moldau.coordinator.consumer_coordinator import ConsumerGroupCoordinator
    from moldau.coordinator.coordinator import GroupCoordinator
    from moldau.coordinator.producer_ids import ProducerIdManager
    from moldau.coordinator.transactions import TransactionCoordinator
    from moldau.log.producer_state import ProducerStateExtension

    classic = core.extensions["group_coordinator"] = GroupCoordinator(
        core, core.new_uuid, core.config.group_initial_rebalance_delay_ms)
    core.extensions["consumer_group_coordinator"] = ConsumerGroupCoordinator(
        core, classic, ConsumerGroupSettings.from_properties(core.config.group_consumer_properties))
    core.extensions["producer_state"] = ProducerStateExtension(core)
    core.extensions["producer_ids"] = ProducerIdManager(core.fs, core.config.data_dir)
    core.extensions["txn_coordinator"] = TransactionCoordinator(core)
