"""A BACKWARD-compatible schema change flows through the real pipeline with its schema id honoured.

A producer that moved to v2 (one new field with a default) registers it under the topic's subject, and its
records, interleaved with v1 records on the same topic, must all reach silver: each
decoded with the writer schema its header names (the v2 ones through the Python decoder's resolution step,
the v1 ones through the JVM fast path), each keeping that id in ``schema_id``. The registry refusing an
incompatible change is tested in ``test_ingestion.py``.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import fastavro
import pytest
import requests
from pyspark.sql import SparkSession

from shoplake.contracts.schemas import schema_dict
from shoplake.runtime.jobs import run_catch_up

from . import test_streaming_medallion as medallion
from .test_streaming_medallion import Lane, frame, make_record, produce, silver_records

# the medallion module's fixtures (one Spark session per module, one isolated topic/Delta/schema per test)
spark = medallion.spark
lane = medallion.lane

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def v2_schema() -> dict[str, Any]:
    doc = schema_dict()
    return {**doc, "fields": [*doc["fields"], {"name": "loyalty_tier", "type": ["null", "string"], "default": None}]}


def register_v2(lane: Lane) -> int:
    resp = requests.post(
        f"{lane.settings.registry.url}/subjects/{lane.topic}-value/versions",
        json={"schema": json.dumps(v2_schema())},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        timeout=30,
    )
    resp.raise_for_status()
    return int(resp.json()["id"])


def frame_v2(schema_id: int, rec: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(v2_schema()), {**rec, "loyalty_tier": "gold"})
    return b"\x00" + struct.pack(">I", schema_id) + buf.getvalue()


def test_backward_compatible_v2_records_reach_silver_and_raw_with_their_schema_id(
    spark: SparkSession, lane: Lane
) -> None:
    v2_id = register_v2(lane)
    assert v2_id != lane.schema_id
    records = [make_record(i) for i in range(40)]
    v2_ids = {r["transaction_id"] for r in records[1::2]}
    produce(
        lane.settings,
        lane.topic,
        [(None, frame_v2(v2_id, r) if r["transaction_id"] in v2_ids else frame(lane.schema_id, r)) for r in records],
    )
    run_catch_up(spark, lane.cfg)

    assert silver_records(spark, lane.cfg) == records  # every v1 field intact, the new one not invented
    silver = spark.read.format("delta").load(str(lane.cfg.silver_path))
    ids = {r.transaction_id: r.schema_id for r in silver.select("transaction_id", "schema_id").collect()}
    assert ids == {t: (v2_id if t in v2_ids else lane.schema_id) for t in (r["transaction_id"] for r in records)}
    assert spark.read.format("delta").load(str(lane.cfg.quarantine_path)).count() == 0
