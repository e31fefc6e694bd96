"""Warehouse freshness: when the streaming sink last loaded ``raw.*`` and when dbt last built the marts.

``raw.<table>.loaded_at`` is stamped by the sink on every upsert; ``marts.fct_transactions.built_at`` by
each dbt build. Their ages (against the report's ``now``) are what the thresholds judge. An unreachable
PostgreSQL is reported in the document instead of raised, so the report is still written on a bad day.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

MARTS_SCHEMA: Final = "marts"  # dbt_project.yml: models/marts +schema
MARTS_FRESHNESS_TABLE: Final = "fct_transactions"  # the incremental fact every other mart derives from


def measure(
    dsn: str, raw_schema: str, raw_table: str, now: datetime, marts_schema: str = MARTS_SCHEMA
) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    out: dict[str, Any] = {"raw_table": f"{raw_schema}.{raw_table}", "marts_schema": marts_schema, "marts": {}}
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            raw = sql.Identifier(raw_schema, raw_table)
            if _exists(conn, raw_schema, raw_table):
                rows, loaded = conn.execute(
                    sql.SQL("SELECT count(*), max(loaded_at) FROM {}").format(raw)
                ).fetchone() or (0, None)
            else:
                rows, loaded = 0, None
            out.update(raw_rows=int(rows), raw_loaded_at=_iso(loaded), raw_age_seconds=_age(now, loaded))
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", (marts_schema,)
            ).fetchall()
            for (name,) in tables:
                count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(marts_schema, name)))
                out["marts"][name] = int((count.fetchone() or (0,))[0])
            built = None
            if MARTS_FRESHNESS_TABLE in out["marts"]:
                query = sql.SQL("SELECT max(built_at) FROM {}").format(
                    sql.Identifier(marts_schema, MARTS_FRESHNESS_TABLE)
                )
                built = (conn.execute(query).fetchone() or (None,))[0]
            out.update(marts_built_at=_iso(built), marts_age_seconds=_age(now, built))
    except psycopg.Error as exc:
        out["error"] = f"PostgreSQL unreachable or unreadable: {exc}".strip()
    return out


def _exists(conn: Any, schema: str, table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s", (schema, table)
    ).fetchone()
    return row is not None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _age(now: datetime, value: datetime | None) -> float | None:
    return round((now - value).total_seconds(), 1) if value else None
