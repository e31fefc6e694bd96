"""One ingestion run end to end - the function the CLI (`shoplake ingest`) and the Airflow DAG both call.

Order matters: every parameter is validated before anything touches Kafka; then the broker and the
registry are health-checked with short timeouts (an unreachable service is a clear error within seconds,
not a producer retrying for minutes); then the topic and schema are ensured (idempotent), end offsets are
captured, the world is generated, encoded and produced chunk by chunk, and finally the topic is verified.

A failed run may have delivered part of its messages. Re-running the same logical run (same seed, start,
run key, N) produces byte-identical records with the same transaction ids, so downstream deduplication
on ``transaction_id`` makes the retry safe.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shoplake.config import Settings
from shoplake.contracts.registry import check_schema_registry, ensure_schema
from shoplake.ingestion.avro_encoder import EncodedBatch, encode_batch
from shoplake.ingestion.generator import GeneratorConfig, generate, run_prefix
from shoplake.ingestion.producer import ProduceResult, produce_encoded
from shoplake.ingestion.topics import check_kafka, ensure_topic
from shoplake.ingestion.verify import VerifyResult, end_offsets, verify_kafka_topic

HEALTH_TIMEOUT: Final = 5.0
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
MAX_SPAN: Final = timedelta(days=3660)
MAX_SEED: Final = 2**63 - 1


class IngestParameterError(ValueError):
    """An ingestion parameter is invalid; nothing has been sent anywhere."""


@dataclass(frozen=True)
class IngestParams:
    num_transactions: int
    seed: int
    start: datetime
    run_key: str
    span: timedelta | None


def parse_start(value: str | datetime) -> datetime:
    """A timezone-aware start instant, normalised to UTC; naive or malformed values are refused."""
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError as exc:
            raise IngestParameterError(
                f"start {value!r} is not an ISO-8601 timestamp (e.g. 2026-01-01T00:00:00Z)"
            ) from exc
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise IngestParameterError(f"start must be an ISO-8601 string or datetime, got {type(value).__name__}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise IngestParameterError(f"start {value!s} has no timezone: give one explicitly, e.g. ...Z or +00:00")
    parsed = parsed.astimezone(UTC)
    if not EARLIEST <= parsed < LATEST:
        raise IngestParameterError(f"start {parsed.isoformat()} is outside {EARLIEST.year}-{LATEST.year}")
    return parsed


def default_run_key(start: datetime, seed: int, num_transactions: int) -> str:
    """The logical identity of a run when the caller gives none: same inputs, same transaction ids."""
    return f"{start.isoformat()}/seed={seed}/n={num_transactions}"


def validate_params(
    settings: Settings,
    num_transactions: Any,
    seed: Any,
    start: str | datetime,
    run_key: str | None = None,
    *,
    span: timedelta | None = None,
) -> IngestParams:
    """Check every parameter (pure: no I/O) and return them normalised."""
    if isinstance(num_transactions, bool) or not isinstance(num_transactions, int):
        raise IngestParameterError(f"num_transactions must be an integer, got {num_transactions!r}")
    if num_transactions <= 0:
        raise IngestParameterError(f"num_transactions must be positive, got {num_transactions}")
    if num_transactions > settings.ingest.max_transactions:
        raise IngestParameterError(
            f"num_transactions={num_transactions:,} exceeds the cap of {settings.ingest.max_transactions:,} "
            "(INGEST_MAX_TRANSACTIONS)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise IngestParameterError(f"seed must be an integer in 0..2**63-1, got {seed!r}")
    begin = parse_start(start)
    if span is not None and not timedelta(0) < span <= MAX_SPAN:
        raise IngestParameterError(f"span must be positive and at most {MAX_SPAN.days} days, got {span}")
    key = default_run_key(begin, seed, num_transactions) if run_key is None else run_key
    if not isinstance(key, str) or not key.strip() or len(key) > 250:
        raise IngestParameterError(f"run_key must be a non-empty string of at most 250 characters, got {run_key!r}")
    return IngestParams(num_transactions, seed, begin, key, span)


@dataclass
class _Stats:
    rows: int = 0
    fraud: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    generate_seconds: float = 0.0


@dataclass(frozen=True)
class IngestResult:
    run_key: str
    seed: int
    start: str
    num_transactions: int
    topic: str
    subject: str
    schema_id: int
    fraud_transactions: int
    first_transaction_id: str
    last_transaction_id: str
    offsets_before: dict[int, int]
    produce: ProduceResult
    verify: VerifyResult | None
    seconds: float
    encode_seconds: float = field(default=0.0)

    @property
    def delivered_per_partition(self) -> dict[int, int]:
        return {p: d.delivered for p, d in self.produce.partitions.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (string partition keys), e.g. for ``--json`` and Airflow XCom."""
        return {
            "run_key": self.run_key,
            "seed": self.seed,
            "start": self.start,
            "num_transactions": self.num_transactions,
            "topic": self.topic,
            "subject": self.subject,
            "schema_id": self.schema_id,
            "sent": self.produce.sent,
            "delivered": self.produce.delivered,
            "failed": self.produce.failed,
            "fraud_transactions": self.fraud_transactions,
            "first_transaction_id": self.first_transaction_id,
            "last_transaction_id": self.last_transaction_id,
            "offsets_before": {str(p): o for p, o in sorted(self.offsets_before.items())},
            "delivered_per_partition": {str(p): n for p, n in sorted(self.delivered_per_partition.items())},
            "produce": self.produce.to_dict(),
            "verify": self.verify.to_dict() if self.verify else None,
            "seconds": round(self.seconds, 3),
            "generate_encode_seconds": round(self.encode_seconds, 3),
            "transactions_per_second": round(self.num_transactions / self.seconds, 1) if self.seconds else None,
        }


def check_health(settings: Settings, timeout: float = HEALTH_TIMEOUT) -> dict[str, Any]:
    """Both services ingestion needs, checked with bounded timeouts (raises on the first one down)."""
    return {"kafka": check_kafka(settings, timeout), "schema_registry": check_schema_registry(settings, timeout)}


def encoded_batches(
    params: IngestParams, schema_id: int, config: GeneratorConfig | None = None, stats: _Stats | None = None
) -> Iterator[EncodedBatch]:
    """Generate and encode the run chunk by chunk (only one chunk in memory at a time)."""
    stats = stats if stats is not None else _Stats()
    batches = generate(
        params.num_transactions, params.seed, params.start, params.run_key, span=params.span, config=config
    )
    while True:
        t0 = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            return
        encoded = encode_batch(batch, schema_id)
        stats.generate_seconds += time.perf_counter() - t0
        stats.rows += len(batch)
        stats.fraud += int(batch.is_fraud.sum())
        stats.first_seq = int(batch.seq[0]) if stats.first_seq is None else stats.first_seq
        stats.last_seq = int(batch.seq[-1])
        yield encoded


def ingest(
    settings: Settings,
    num_transactions: Any,
    seed: Any,
    start: str | datetime,
    run_key: str | None = None,
    *,
    span: timedelta | None = None,
    verify: bool = True,
    config: GeneratorConfig | None = None,
) -> IngestResult:
    """Validate, health-check, ensure topic + schema, produce ``num_transactions``, verify; see module doc."""
    params = validate_params(settings, num_transactions, seed, start, run_key, span=span)
    started = time.perf_counter()
    check_health(settings)
    topic = ensure_topic(settings)
    registered = ensure_schema(settings)
    before = end_offsets(settings, topic.name)
    stats = _Stats()
    from shoplake.lineage import job_run

    with job_run(settings, "ingest"):
        produced = produce_encoded(settings, encoded_batches(params, registered.schema_id, config, stats), topic.name)
    checked = None
    if verify:
        delivered = {p: d.delivered for p, d in produced.partitions.items()}
        checked = verify_kafka_topic(settings, before, delivered, topic=topic.name)
    prefix = run_prefix(params.run_key)
    return IngestResult(
        run_key=params.run_key,
        seed=params.seed,
        start=params.start.isoformat(),
        num_transactions=params.num_transactions,
        topic=topic.name,
        subject=registered.subject,
        schema_id=registered.schema_id,
        fraud_transactions=stats.fraud,
        first_transaction_id=f"tx-{prefix}-{stats.first_seq or 0:012d}",
        last_transaction_id=f"tx-{prefix}-{stats.last_seq or 0:012d}",
        offsets_before=before,
        produce=produced,
        verify=checked,
        seconds=time.perf_counter() - started,
        encode_seconds=stats.generate_seconds,
    )
