"""The warehouse sink's input checks, which must fail before PostgreSQL is touched (no server needed).

The target's DSN points at a port nothing listens on: any attempt to connect would raise a connection
error, so a ValueError or the input's own exception proves the sink gave up before its first side effect.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from shoplake.pipeline.sinks.postgres import (
    COLUMN_TYPES,
    Upserted,
    WarehouseTable,
    partition_loader,
    upsert,
    upsert_batches,
)

pytestmark = pytest.mark.unit

NOWHERE = WarehouseTable("host=127.0.0.1 port=1 dbname=none connect_timeout=1", "raw", "transactions")


class _InputBrokeError(RuntimeError):
    pass


def _batch(rows: int, columns: tuple[str, ...] = tuple(COLUMN_TYPES)) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({c: pa.array(["x"] * rows, pa.string()) for c in columns})


def test_no_rows_means_no_connection() -> None:
    assert upsert_batches(NOWHERE, iter([])) == Upserted(0, 0)
    assert upsert_batches(NOWHERE, iter([_batch(0), _batch(0)])) == Upserted(0, 0)
    assert upsert(NOWHERE, pa.table(_batch(0))) == 0


def test_a_batch_without_the_warehouse_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="lack warehouse columns"):
        upsert_batches(NOWHERE, iter([_batch(2, ("transaction_id", "event_time"))]))


def test_an_input_that_breaks_off_raises_its_own_error_before_any_connection() -> None:
    def broken() -> Iterator[pa.RecordBatch]:
        yield _batch(3)
        raise _InputBrokeError("partition input ended early")

    with pytest.raises(_InputBrokeError):
        upsert_batches(NOWHERE, broken())
    with pytest.raises(_InputBrokeError):
        list(partition_loader(NOWHERE)(broken()))


def test_an_empty_partition_reports_zero_rows() -> None:
    (result,) = list(partition_loader(NOWHERE)(iter([])))
    assert result.to_pydict() == {"rows": [0], "changed": [0]}
