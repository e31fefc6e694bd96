"""Pure DataFrame -> DataFrame transforms from bronze rows to silver and quarantine; no reads, writes or clocks.

Each batch body (:mod:`shoplake.pipeline.medallion`) is "read, apply these, write", so everything that decides
what a row becomes - decoding, the validation rules and their reason codes, the silver shape, deduplication -
is here and unit-tested on small DataFrames (the bronze layout is :mod:`shoplake.pipeline.bronze`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final, cast

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as sf
from pyspark.sql.pandas.functions import arrow_udf
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from shoplake.contracts import reference
from shoplake.pipeline.silver.decode import DECODE_STATUS_FIELDS, Decoder, record_fields

REQUIRED_IDS: Final = ("transaction_id", "customer_id", "merchant_id", "device_id")
# Largest single payment accepted as plausible (in minor units): 10 million in two-decimal currencies.
MAX_AMOUNT_MINOR_UNITS: Final = 1_000_000_000
# Oldest plausible event: anything earlier is a producer bug (e.g. seconds sent as milliseconds).
MIN_EVENT_TIME_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
SILVER_COLUMNS: Final = (
    "transaction_id",
    "event_time",
    "event_date",
    "event_hour",
    "customer_id",
    "merchant_id",
    "merchant_category",
    "merchant_country",
    "amount_cents",
    "amount",
    "currency",
    "payment_method",
    "channel",
    "device_id",
    "device_type",
    "ip_address",
    "ip_country",
    "status",
    "is_fraud",
    "fraud_pattern",
    "schema_id",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "ingested_at",
)
QUARANTINE_COLUMNS: Final = (
    "reason",
    "detail",
    "transaction_id",
    "schema_id",
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "key",
    "value",
    "ingested_at",
    "event_date",
)


def _decode_values(decoder: Decoder) -> Callable[[pa.Array], pa.Array]:
    """The Arrow UDF body (cloudpickled to the Python workers): Avro values -> one struct of decoded fields."""

    def decode(values: pa.Array) -> pa.Array:
        decoded = decoder.decode_batch(pa.RecordBatch.from_arrays([values], names=["value"]))
        return pa.StructArray.from_arrays(decoded.columns[1:], fields=list(decoded.schema)[1:])

    return decode


_DECODED = "_decoded"


def decode_frames(bronze: DataFrame, decoder: Decoder) -> DataFrame:
    """Bronze -> bronze columns + ``schema_id``/``decode_error``/``decode_detail`` + one column per field.

    Runs :class:`Decoder` as an Arrow UDF on the ``value`` column, so per-record failures become reason
    codes, never exceptions, and only the message bytes travel to Python and the decoded fields back (the
    other bronze columns stay in the JVM; shipping them through ``mapInArrow`` cost more than decoding).
    """
    extra = pa.schema([*DECODE_STATUS_FIELDS, *record_fields(decoder.reader_schema)])
    # Typed loosely: the stubs require functionType, which PySpark deprecates in favour of the type hints.
    decode = cast(Any, arrow_udf)(_decode_values(decoder), StructType(from_arrow_schema(extra).fields))
    return bronze.withColumn(_DECODED, decode(sf.col("value"))).select(*bronze.columns, f"{_DECODED}.*")


def _rules(max_event_age_days: int, max_clock_skew_minutes: int) -> list[tuple[str, Column, Column]]:
    """``(reason, fails, detail)`` per rule, in the order they are reported (first failure wins)."""

    def is_blank(name: str) -> Column:
        return sf.col(name).isNull() | (sf.trim(sf.col(name)) == "")

    def not_in(name: str, allowed: frozenset[str]) -> Column:
        return ~sf.col(name).isin(*sorted(allowed))

    event_ms = sf.col("event_time")
    kafka_ms = sf.unix_millis(sf.col("kafka_timestamp"))
    checks: list[tuple[str, Column, Column]] = [
        (f"missing_{name}", is_blank(name), sf.lit(f"{name} is empty")) for name in REQUIRED_IDS
    ]
    checks += [
        (
            "invalid_amount",
            (sf.col("amount_cents") <= 0) | (sf.col("amount_cents") > MAX_AMOUNT_MINOR_UNITS),
            sf.format_string("amount_cents=%s, expected 1..%s", sf.col("amount_cents"), sf.lit(MAX_AMOUNT_MINOR_UNITS)),
        ),
        (
            "invalid_currency",
            not_in("currency", frozenset(reference.CURRENCY_CODES)),
            sf.format_string("currency=%s is not a reference code (dbt/seeds/currency_rates.csv)", sf.col("currency")),
        ),
        (
            "invalid_event_time",
            (event_ms < MIN_EVENT_TIME_MS)
            | (event_ms < kafka_ms - sf.lit(max_event_age_days * 86_400_000))
            | (event_ms > kafka_ms + sf.lit(max_clock_skew_minutes * 60_000)),
            sf.format_string(
                "event_time=%s ms vs kafka timestamp %s ms (allowed: %s days older, %s minutes newer)",
                event_ms,
                kafka_ms,
                sf.lit(max_event_age_days),
                sf.lit(max_clock_skew_minutes),
            ),
        ),
    ]
    for name, allowed, seed in (
        ("payment_method", frozenset(reference.PAYMENT_METHOD_CODES), "payment_methods"),
        ("merchant_category", frozenset(reference.CATEGORY_CODES), "merchant_categories"),
        ("merchant_country", frozenset(reference.COUNTRY_CODES), "countries"),
        ("ip_country", frozenset(reference.COUNTRY_CODES), "countries"),
    ):
        message = f"{name}=%s is not a reference code (dbt/seeds/{seed}.csv)"
        checks.append((f"invalid_{name}", not_in(name, allowed), sf.format_string(message, sf.col(name))))
    for name, values in (
        ("channel", reference.CHANNELS),
        ("device_type", reference.DEVICE_TYPES),
        ("status", reference.STATUSES),
    ):
        message = f"{name}=%s is not a known value"
        checks.append((f"invalid_{name}", not_in(name, frozenset(values)), sf.format_string(message, sf.col(name))))
    checks.append(("missing_is_fraud", sf.col("is_fraud").isNull(), sf.lit("is_fraud is null")))
    return checks


def validate(decoded: DataFrame, *, max_event_age_days: int = 3650, max_clock_skew_minutes: int = 60) -> DataFrame:
    """Add ``reason`` and ``detail``: null for a valid record, else the decode error or first failed rule.

    A rule whose inputs are null counts as failed (``coalesce(fails, true)``): null must never slip through
    a comparison into silver. The rules run once per record (for ``reason``); ``detail`` is looked up from
    the reason, so a valid record - nearly every record - costs one null check for it and no formatting.
    """
    reason, detail = _validation_columns(max_event_age_days, max_clock_skew_minutes)
    return decoded.withColumn("reason", reason).withColumn("detail", detail)


@functools.lru_cache(maxsize=8)
def _validation_columns(max_event_age_days: int, max_clock_skew_minutes: int) -> tuple[Column, Column]:
    """The ``reason`` and ``detail`` expressions, composed once per limits and reused by every micro-batch.

    Composing them is ~100 rule expressions and literal lists, each a py4j round trip to the JVM: driver time
    that every micro-batch paid before its first task. Columns are unresolved
    expressions, bound to no DataFrame, so one copy serves every batch.
    """
    checks = _rules(max_event_age_days, max_clock_skew_minutes)
    reason = sf.coalesce(
        sf.col("decode_error"), *(sf.when(sf.coalesce(fails, sf.lit(True)), sf.lit(code)) for code, fails, _ in checks)
    )
    (first, _, first_msg), *rest = checks
    rule_detail = sf.when(sf.col("reason") == first, sf.coalesce(first_msg, sf.lit(first)))
    for code, _, msg in rest:
        rule_detail = rule_detail.when(sf.col("reason") == code, sf.coalesce(msg, sf.lit(code)))
    detail = sf.when(sf.col("reason").isNotNull(), sf.coalesce(sf.col("decode_detail"), rule_detail))
    return reason, detail


def quarantine_rows(validated: DataFrame) -> DataFrame:
    """Rows that failed decoding or validation, with the raw bytes and where they came from."""
    return validated.where(sf.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS)


def _minor_unit_divisor() -> Column:
    """10 ** the currency's ISO 4217 exponent: a constant 100 unless a reference currency has another exponent."""
    expr: Column = sf.lit(100)
    for currency, exponent in sorted(reference.CURRENCY_EXPONENTS.items()):
        if exponent != 2:
            expr = sf.when(sf.col("currency") == currency, sf.lit(10**exponent)).otherwise(expr)
    return expr


def silver_rows(validated: DataFrame) -> DataFrame:
    """Valid rows typed for silver: timestamps, event date/hour, the amount in major units, lineage."""
    return validated.where(sf.col("reason").isNull()).select(*_silver_columns())


_KAFKA_RENAMES: Final = {"kafka_topic": "topic", "kafka_partition": "partition", "kafka_offset": "offset"}


@functools.lru_cache(maxsize=1)
def _silver_columns() -> list[Column]:
    """The columns of :func:`silver_rows` in table order, composed once (see :func:`_validation_columns`).

    One ``select`` instead of ``withColumns`` + renames + ``select``: every DataFrame step re-analyses the
    whole plan on the driver, once per micro-batch.
    """
    event_time = sf.timestamp_millis(sf.col("event_time"))
    amount = (sf.col("amount_cents").cast("decimal(20,0)") / _minor_unit_divisor()).cast("decimal(18,3)")
    typed = {
        "event_time": event_time,
        "event_date": sf.to_date(event_time),
        "event_hour": sf.hour(event_time),
        "amount": amount,
    }
    return [
        typed[name].alias(name)
        if name in typed
        else sf.col(_KAFKA_RENAMES[name]).alias(name)
        if name in _KAFKA_RENAMES
        else sf.col(name)
        for name in SILVER_COLUMNS
    ]


# The Kafka order the first copy is chosen in: (topic, partition, offset) names one record, so it is total.
_KAFKA_ORDER: Final = ("kafka_timestamp", "kafka_topic", "kafka_partition", "kafka_offset")


def first_per_transaction(silver: DataFrame) -> DataFrame:
    """One row per ``transaction_id``: the earliest copy in Kafka order (a re-sent record never replaces it)."""
    order = Window.partitionBy("transaction_id").orderBy(*_KAFKA_ORDER)
    return silver.withColumn("_rank", sf.row_number().over(order)).where(sf.col("_rank") == 1).drop("_rank")


def unseen_first_copies(silver: DataFrame, existing_ids: DataFrame) -> DataFrame:
    """What a batch adds to silver: the first copy of every ``transaction_id`` that ``existing_ids`` lacks."""
    return first_per_transaction(silver).join(existing_ids.select("transaction_id"), "transaction_id", "left_anti")


def unseen_first_copies_arrow(silver: pa.Table, existing_ids: pa.Array) -> pa.Table:
    """:func:`unseen_first_copies` for a batch already on the driver (Arrow), without a Spark job.

    Keeps the same copy Spark keeps - the earliest in Kafka order, a total order - so the rows loaded from
    this table and the rows silver appends through :func:`unseen_first_copies` are identical.
    """
    ordered = silver.sort_by([("transaction_id", "ascending"), *((name, "ascending") for name in _KAFKA_ORDER)])
    ids = ordered.column("transaction_id").combine_chunks()
    if len(ids) == 0:
        return ordered
    first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)).fill_null(True)
    keep = pa.concat_arrays([pa.array([True]), first])
    keep = pc.and_(keep, pc.invert(pc.is_in(ids, value_set=existing_ids.cast(ids.type))))
    return ordered.filter(keep)
