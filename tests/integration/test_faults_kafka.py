"""The Kafka broker dies during ingestion: the idempotent producer retries, nothing is lost or duplicated.

The broker is SIGKILLed between two halves of one ``produce_encoded`` call (messages of the first half may
still be in flight) and restarted while the second half is queued. Every message must be acknowledged
exactly once: delivered count = topic growth = distinct transaction ids. A broker that stays down makes the
run fail loudly with the tally, and re-running the same logical run only repeats identical transaction ids.
The topic - the faulted run plus that replay - is then streamed through the real pipeline and dbt: every
delivered transaction is in silver, in PostgreSQL raw and in fct_transactions exactly once.
"""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from shoplake.config import Settings
from shoplake.contracts import schemas, wire
from shoplake.contracts.registry import ensure_schema
from shoplake.ingestion.avro_encoder import EncodedBatch
from shoplake.ingestion.producer import DeliveryError, produce_encoded
from shoplake.ingestion.run import encoded_batches, validate_params
from shoplake.ingestion.verify import end_offsets
from tests.integration import exactly_once, faults

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

N = 4_000
START = "2026-03-01T00:00:00Z"


@pytest.fixture
def settings(stack: Settings) -> Iterator[Settings]:
    with faults.private_topic(stack, "it-faults", "kafka") as ours:
        yield ours


def halves(settings: Settings, schema_id: int) -> tuple[list[EncodedBatch], list[EncodedBatch]]:
    """One logical run of N transactions as two separately produced halves (two run keys)."""
    out = []
    for key in ("first-half", "second-half"):
        params = validate_params(settings, N // 2, 11, START, run_key=f"faults-{key}")
        out.append(list(encoded_batches(params, schema_id)))
    return out[0], out[1]


def transaction_ids(settings: Settings, before: dict[int, int], after: dict[int, int]) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"faults-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    want = sum(after[p] - before.get(p, 0) for p in after)
    consumer.assign([TopicPartition(settings.kafka.topic, p, before.get(p, 0)) for p in after])
    ids: list[str] = []

    def read() -> bool:
        for msg in consumer.consume(5000, timeout=1.0):
            assert msg.error() is None, msg.error()
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            if offset < after[partition]:
                ids.append(wire.decode_record(msg.value(), schemas.parsed_schema())[1]["transaction_id"])
        return len(ids) >= want

    try:
        faults.wait_for(read, f"{want} messages to be read back", timeout=120, interval=0)
    finally:
        consumer.close()
    return ids


def test_broker_killed_mid_run_every_message_delivered_exactly_once(settings: Settings) -> None:
    schema_id = ensure_schema(settings).schema_id
    first, second = halves(settings, schema_id)
    before = end_offsets(settings)
    restarted = threading.Event()

    def restart() -> None:
        faults.start(settings, "kafka")
        restarted.set()

    def batches() -> Iterator[EncodedBatch]:
        yield from first
        faults.stop(settings, "kafka", signal.SIGKILL)  # a crash, not a clean shutdown
        threading.Thread(target=restart, daemon=True).start()
        yield from second  # queued in the producer while the broker is down

    result = produce_encoded(settings, batches())
    assert restarted.is_set()
    assert result.sent == result.delivered == N and result.failed == 0
    after = faults.settled_end_offsets(settings)
    assert sum(after[p] - before.get(p, 0) for p in after) == N  # topic growth = delivered
    ids = transaction_ids(settings, before, after)
    assert len(ids) == len(set(ids)) == N  # no retry was written twice

    rerun = produce_encoded(settings, iter([*first, *second]))  # the same logical run again
    assert rerun.delivered == N
    again = end_offsets(settings)
    replayed = transaction_ids(settings, after, again)
    assert sorted(replayed) == sorted(ids)  # identical ids: downstream dedup on transaction_id absorbs it
    # the invariant end to end: the topic (first run + replay) lands in silver, raw and the mart exactly once
    exactly_once.assert_exactly_once(faults.stream_topic(settings, settings.kafka.topic), set(ids))


def test_broker_down_for_good_fails_loudly_with_the_tally(settings: Settings) -> None:
    schema_id = ensure_schema(settings).schema_id
    first, _ = halves(settings, schema_id)
    faults.stop(settings, "kafka")
    with pytest.raises(DeliveryError) as failure:
        produce_encoded(settings, iter(first), settings.kafka.topic, 30.0, **{"message.timeout.ms": 5_000})
    tally = failure.value.result
    assert tally.sent == N // 2 and tally.delivered == 0 and tally.failed == N // 2
    assert "delivered" in str(failure.value)
    faults.start(settings, "kafka")
    assert sum(faults.settled_end_offsets(settings).values()) == 0  # nothing was half-written
