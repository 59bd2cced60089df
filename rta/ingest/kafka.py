"""Kafka mode: the collect API produces to a partitioned topic instead of the local log.

The producer is idempotent with ``acks=all``; a request is answered once the broker has
acknowledged its message. As with the local log, flush groups are stored: a marker message
(empty, header ``rta-group-end``) closes each partition's group every half second, so the
flow's reader (:mod:`rta.flows.kafka_source`) re-forms the same groups on any replay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import msgspec

from rta.errors import ConfigError
from rta.ingest.dedup import InFlight, InsertIdFilter
from rta.ingest.log import GROUP_SECONDS, LogFull, new_lines

GROUP_END_HEADER = "rta-group-end"
log = logging.getLogger("rta.ingest")


def topic_for(stream: str) -> str:
    """The topic a stream's events go to."""
    return f"rta.{stream}"


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        existing = admin.list_topics(timeout=10).topics
    except Exception as err:
        msg = f"cannot reach the Kafka broker at {bootstrap!r}: {err}; check RTA_KAFKA_BOOTSTRAP or [ingest] kafka in rta.toml"
        raise ConfigError(msg) from None
    if topic in existing:
        return
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        try:
            future.result(timeout=10)
        except Exception as err:  # created meanwhile by another replica is fine
            if "already exists" not in str(err).lower() and "TOPIC_ALREADY_EXISTS" not in str(err):
                raise ConfigError(f"cannot create the Kafka topic {topic!r}: {err}") from None


def recent_messages(bootstrap: str, topic: str, partitions: int, since: float, *, timeout: float = 60.0) -> Iterator[tuple[float, bytes]]:
    """(when produced, payload) of the topic's event messages from ``since`` (epoch seconds) on,
    read to the end of every partition (end-of-partition events: some brokers' watermarks are off)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"rta-recent-{topic}", "enable.auto.commit": False, "enable.partition.eof": True}
    )
    try:
        wanted = [TopicPartition(topic, p, int(since * 1000)) for p in range(partitions)]
        try:
            starts = [tp for tp in consumer.offsets_for_times(wanted, timeout=10) if tp.offset >= 0]  # -1: nothing that recent
        except Exception:  # a broker without time lookups: read from the start, filter by time below
            log.debug("offsets_for_times failed on %s; reading %s from the beginning", bootstrap, topic, exc_info=True)
            starts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        consumer.assign(starts)
        open_partitions, deadline = {tp.partition for tp in starts}, time.monotonic() + timeout
        while open_partitions and time.monotonic() < deadline:
            for message in consumer.consume(2_000, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001 (confluent-kafka's public name)
                        open_partitions.discard(message.partition())
                    continue
                produced, payload = message.timestamp()[1] / 1000, message.value()
                if payload and produced >= since:
                    yield produced, payload
        if open_partitions:
            missing = sorted(open_partitions)
            log.warning("reading recent messages of %s timed out; insert ids of partitions %s may be missing", topic, missing)
    finally:
        consumer.close()


class KafkaLog:
    """The collect API's log, in Kafka: ``submit`` resolves once the broker acknowledged."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        *,
        owned: Iterable[int] | None = None,
        dedup: InsertIdFilter | None = None,
        group_seconds: float = GROUP_SECONDS,
    ) -> None:
        from confluent_kafka import Producer

        ensure_topic(bootstrap, topic, partitions)
        self.topic = topic
        self.partitions = list(range(partitions) if owned is None else owned)  # those this process produces to
        self.group_seconds = group_seconds
        self.dedup = dedup
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "queue.buffering.max.kbytes": 262144,
            }
        )
        self._open: dict[int, float] = {}  # partition -> when its open group got its first message
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rta-kafka-{topic}", daemon=True)
        self._thread.start()

    def submit(self, partition: int, payload: bytes) -> Future[int]:
        """Produce ``payload`` to ``partition``; the future resolves with its offset once acknowledged."""
        future: Future[int] = Future()

        def delivered(err: Any, message: Any) -> None:
            if err is not None:
                future.set_exception(LogFull(f"the Kafka broker refused the events: {err}"))
            else:
                future.set_result(int(message.offset()))

        with self._lock:
            try:
                self._producer.produce(self.topic, value=payload, partition=partition, on_delivery=delivered)
            except BufferError:
                raise LogFull("the Kafka producer's buffer is full; the broker is behind") from None
            self._open.setdefault(partition, time.monotonic())
        return future

    def submit_events(self, partition: int, lines: Sequence[bytes | msgspec.Raw], insert_ids: Sequence[str]) -> Future[list[bool]]:
        """Like :meth:`rta.ingest.log.EventLog.submit_events`: the new events go to the broker, the future says which they were."""
        dedup = self.dedup
        claim = dedup.claim(insert_ids) if dedup is not None else None
        if dedup is not None and claim is None:
            raise InFlight("events with these insert ids are being written by another request right now")
        fresh = claim.fresh if claim is not None else [True] * len(lines)
        done: Future[list[bool]] = Future()
        payload = new_lines(lines, fresh)
        if not payload:
            done.set_result(fresh)
            return done

        def delivered(produced: Future[int]) -> None:
            failure = produced.exception()
            if dedup is not None and claim is not None:
                (dedup.release if failure is not None else dedup.confirm)(claim)
            if failure is not None:
                done.set_exception(failure)
            else:
                done.set_result(fresh)

        try:
            self.submit(partition, payload).add_done_callback(delivered)
        except BaseException:
            if dedup is not None and claim is not None:
                dedup.release(claim)
            raise
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.01)
            self._close_groups(force=False)

    def _close_groups(self, *, force: bool) -> None:
        now = time.monotonic()
        with self._lock:
            for partition, since in list(self._open.items()):
                if force or now - since >= self.group_seconds:
                    self._producer.produce(self.topic, value=b"", partition=partition, headers={GROUP_END_HEADER: b"1"})
                    del self._open[partition]

    def close(self) -> None:
        """Close open groups, deliver everything, stop."""
        self._stop.set()
        self._thread.join()
        self._close_groups(force=True)
        self._producer.flush(30)
