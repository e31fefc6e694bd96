"""The write-cost table properties: what they set, that Delta and Parquet honour them, and idempotence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import SparkSession

from shoplake.config import get_settings
from shoplake.lakehouse import table_properties
from shoplake.pipeline.bronze import BRONZE_COLUMNS
from shoplake.pipeline.silver.transforms import SILVER_COLUMNS
from shoplake.runtime.session import spark_session

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-unit", shuffle_partitions=1)


def _columns(props: dict[str, str]) -> tuple[set[str], set[str]]:
    plain = {
        k.split("#", 1)[1] for k, v in props.items() if k.startswith("parquet.enable.dictionary#") and v == "false"
    }
    return plain, set(props[table_properties.STATS_COLUMNS].split(","))


@pytest.mark.parametrize(
    ("props", "columns"), [(table_properties.BRONZE, BRONZE_COLUMNS), (table_properties.SILVER, SILVER_COLUMNS)]
)
def test_properties_name_existing_columns_and_keep_event_time_statistics(
    props: dict[str, str], columns: tuple[str, ...]
) -> None:
    plain, stats = _columns(props)
    assert plain and plain <= set(columns)
    assert stats and stats <= set(columns)
    if "event_time" in columns:
        assert "event_time" in stats  # the silver dedup lookup skips files on it (silver_ids)


def test_missing_lists_only_absent_or_different_values() -> None:
    wanted = {"a": "1", "b": "2"}
    assert table_properties.missing({"a": "1", "b": "3", "c": "x"}, wanted) == {"b": "2"}
    assert table_properties.missing({"a": "1", "b": "2"}, wanted) == {}


def test_a_path_without_a_delta_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TableNotFoundError):
        table_properties.apply(str(tmp_path), {"delta.checkpointInterval": "100"})
    assert not (tmp_path / "_delta_log").exists()


def _data_files(table: Path) -> list[Path]:
    return [p for p in table.rglob("*.parquet") if pq.ParquetFile(p).metadata.num_rows]


def _last_add_stats(table: Path) -> dict[str, dict[str, object]]:
    last = sorted((table / "_delta_log").glob("*.json"))[-1]
    adds = [json.loads(line)["add"] for line in last.read_text().splitlines() if '"add"' in line]
    return json.loads(adds[0]["stats"])  # type: ignore[no-any-return]


def test_delta_writes_plain_unique_columns_and_only_the_listed_statistics(spark: SparkSession, tmp_path: Path) -> None:
    table = tmp_path / "t"
    rows = spark.range(2_000, numPartitions=1).selectExpr(
        "concat('tx-', id) AS transaction_id", "id % 3 AS bucket", "timestamp_millis(id) AS event_time"
    )
    rows.limit(0).write.format("delta").save(str(table))
    wanted = {"parquet.enable.dictionary#transaction_id": "false", table_properties.STATS_COLUMNS: "event_time"}

    assert table_properties.apply(str(table), wanted) == wanted
    versions = len(list((table / "_delta_log").glob("*.json")))
    assert table_properties.apply(str(table), wanted) == {}  # idempotent: no second commit
    assert len(list((table / "_delta_log").glob("*.json"))) == versions

    rows.write.format("delta").mode("append").save(str(table))
    (data,) = _data_files(table)
    meta = pq.ParquetFile(data).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: set(meta.column(i).encodings) for i in range(meta.num_columns)}
    assert "PLAIN_DICTIONARY" not in encodings["transaction_id"] and "RLE_DICTIONARY" not in encodings["transaction_id"]
    assert encodings["bucket"] & {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}  # other columns keep their dictionary
    stats = _last_add_stats(table)
    assert set(stats["minValues"]) == {"event_time"}
