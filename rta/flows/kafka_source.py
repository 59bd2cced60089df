"""The flow's source over a Kafka topic written by the collect API (Kafka mode).

Like the local log's source: one Bytewax partition per topic partition, one batch per stored
group (messages up to a ``rta-group-end`` marker), keyed by its first offset; recovery
snapshots hold the offset of the next group, so a replay re-forms the same groups and its
inserts deduplicate. Partitions are assigned, not subscribed: no consumer-group rebalancing.
"""

from __future__ import annotations

import threading
from typing import Any

from typing_extensions import override

from rta.flows.sources import SourceBatch
from rta.flows.stored_groups import GroupAssembler, PolledGroups, StoredPartitions

GROUP_END_HEADER = "rta-group-end"  # rta.ingest.kafka writes it


class _TopicPartition(PolledGroups):
    def __init__(self, source: KafkaSource, partition: int, offset: int) -> None:
        from confluent_kafka import Consumer, TopicPartition

        super().__init__(source.stop, GroupAssembler(source.stream, f"kafka:{source.topic}:{partition}", f"kafka-{partition}", offset))
        self._consumer = Consumer(
            {"bootstrap.servers": source.bootstrap, "group.id": f"rta-{source.topic}", "enable.auto.commit": False,
             "auto.offset.reset": "earliest", "enable.partition.eof": False}
        )  # fmt: skip
        self._consumer.assign([TopicPartition(source.topic, partition, offset)])

    @override
    def _read(self) -> list[SourceBatch | None]:
        added = []
        for message in self._consumer.consume(2_000, timeout=0):
            if message.error() is not None:
                continue
            headers: Any = message.headers() or ()
            offset = message.offset() or 0
            ends = any(name == GROUP_END_HEADER for name, _ in headers)
            added.append(self._groups.add(offset, message.value() or b"", ends_group=ends, after=offset + 1))
        return added

    @override
    def close(self) -> None:
        self._consumer.close()


class KafkaSource(StoredPartitions):
    """Read ``topic``'s partitions from their recovery offsets, until ``stop``."""

    def __init__(self, bootstrap: str, topic: str, stream: str, partitions: int, *, stop: threading.Event | None = None) -> None:
        super().__init__(stream, partitions, stop)
        self.bootstrap = bootstrap
        self.topic = topic

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _TopicPartition:
        return _TopicPartition(self, int(for_part[1:]), resume_state or 0)
