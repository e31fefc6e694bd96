"""The health report as one static, self-contained HTML page: charts as embedded PNGs, lineage as inline SVG.

No JavaScript, no external assets: the file can be mailed, archived or opened from a CI artefact. Charts
are drawn with matplotlib's non-interactive Agg backend (no display needed on a server).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from html import escape
from typing import Any, Final

COLOURS: Final = {"OK": "#2e7d32", "WARN": "#ef6c00", "FAIL": "#c62828"}
LAYERS: Final = ("Kafka topics", "Delta tables", "PostgreSQL raw", "dbt marts", "ML model")


def render(report: dict[str, Any], lag_history: Sequence[tuple[str, int]] = ()) -> str:
    status = str(report["status"])
    history = [*lag_history]
    total = (report.get("kafka_lag") or {}).get("total_lag")
    if total is not None:
        history.append((str(report["generated_at"]), int(total)))
    sections = [
        f"<h1>Shoplake health: <span style='color:{COLOURS[status]}'>{status}</span></h1>",
        f"<p>Generated {escape(str(report['generated_at']))}</p>",
        _findings(report["findings"]),
        "<h2>Delta tables</h2>",
        _table_rows(report["tables"]),
        _chart_tables(report["tables"]),
        "<h2>Streaming</h2>",
        _streaming(report["streaming"]),
        _chart_lag(report.get("kafka_lag") or {}, history),
        "<h2>Quarantine</h2>",
        _quarantine(report["quarantine"]),
        "<h2>Warehouse</h2>",
        _key_values(report["warehouse"]),
        "<h2>Production model</h2>",
        _key_values(report["model"]),
        "<h2>Data quality</h2>",
        _quality(report.get("quality")),
        "<h2>Lineage</h2>",
        lineage_svg(report.get("lineage") or {}),
        "<h2>Thresholds</h2>",
        _key_values(report["thresholds"]),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Shoplake health</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}.FAIL{color:#c62828}"
        ".WARN{color:#ef6c00}.OK{color:#2e7d32}</style></head><body>" + "\n".join(sections) + "</body></html>"
    )


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _findings(findings: Sequence[dict[str, Any]]) -> str:
    if not findings:
        return "<p class='OK'>No findings: every check is within its threshold.</p>"
    items = "".join(
        f"<li class='{escape(f['level'])}'><b>{escape(f['level'])}</b> {escape(f['component'])}: "
        f"{escape(f['message'])}</li>"
        for f in findings
    )
    return f"<ul>{items}</ul>"


def _table_rows(tables: Sequence[dict[str, Any]]) -> str:
    rows = [
        (
            t["name"],
            t["status"],
            t["version"],
            t["rows"],
            t["files"],
            t["small_files"],
            t["age_seconds"],
            len(t.get("columns") or ()),
        )
        for t in tables
    ]
    schemas = "".join(
        f"<details><summary>schema of {escape(t['name'])}</summary><code>{escape(', '.join(t['columns']))}</code>"
        "</details>"
        for t in tables
        if t.get("columns")
    )
    header = ("table", "status", "version", "rows", "files", "small files", "last commit age (s)", "columns")
    return _html_table(header, rows) + schemas


def _streaming(streaming: dict[str, Any]) -> str:
    queries = streaming.get("queries") or {}
    rows = [
        (
            q,
            m["last_batch_id"],
            m["age_seconds"],
            m["input_rows"],
            m["processed_rows_per_second"],
            m["batch_duration_ms"],
        )
        for q, m in sorted(queries.items())
    ]
    header = ("query", "last batch", "age (s)", "input rows", "rows/s", "batch ms")
    return _html_table(header, rows) if rows else "<p>No streaming progress recorded.</p>"


def _quarantine(q: dict[str, Any]) -> str:
    rows = [(r["reason"], r["rows"]) for r in q.get("top_reasons") or []]
    return f"<p>{q.get('rows', 0)} quarantined rows.</p>" + (_html_table(("reason", "rows"), rows) if rows else "")


def _quality(quality: dict[str, Any] | None) -> str:
    if not quality:
        return "<p class='WARN'>No data-quality run recorded yet (<code>shoplake dq</code>).</p>"
    rows = [
        ("pass" if c["passed"] else "FAIL", c["name"], c["observed"], c["expected"], c["detail"])
        for c in quality["checks"]
    ]
    return f"<p>Run {escape(quality['run_id'])} at {escape(quality['checked_at'])}</p>" + _html_table(
        ("result", "check", "observed", "expected", "detail"), rows
    )


def _key_values(doc: dict[str, Any]) -> str:
    return _html_table(("key", "value"), [(k, v) for k, v in doc.items()])


# ---- charts -----------------------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f"<img alt='chart' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _figure(cols: int) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, cols, figsize=(5 * cols, 3))


def _chart_tables(tables: Sequence[dict[str, Any]]) -> str:
    present = [t for t in tables if t["rows"] is not None]
    if not present:
        return ""
    fig, (rows_ax, files_ax) = _figure(2)
    names = [t["name"] for t in present]
    rows_ax.barh(names, [t["rows"] for t in present], color="#1565c0")
    rows_ax.set_title("rows per table")
    files_ax.barh(names, [t["files"] for t in present], color="#90caf9", label="files")
    files_ax.barh(names, [t["small_files"] or 0 for t in present], color="#ef6c00", label="small files")
    files_ax.set_title("data files")
    files_ax.legend()
    return _png(fig)


def _chart_lag(lag: dict[str, Any], history: Sequence[tuple[str, int]]) -> str:
    parts = lag.get("partitions") or {}
    if lag.get("error"):
        return f"<p class='FAIL'>{escape(str(lag['error']))}</p>"
    if not parts:
        return ""
    fig, (now_ax, time_ax) = _figure(2)
    now_ax.bar(list(parts), [p["lag"] for p in parts.values()], color="#6a1b9a")
    now_ax.set_title("Kafka lag per partition (records)")
    now_ax.tick_params(axis="x", labelrotation=30)
    time_ax.plot(range(len(history)), [v for _, v in history], marker="o")
    time_ax.set_title("total lag, last reports")
    time_ax.set_xticks(range(len(history)), [t[11:16] for t, _ in history], rotation=30)
    table = _html_table(
        ("partition", "committed", "end", "lag"), [(k, v["committed"], v["end"], v["lag"]) for k, v in parts.items()]
    )
    return _png(fig) + table


# ---- lineage ----------------------------------------------------------------------------------------------
def layer_of(dataset: str) -> int:
    """Column of a dataset in the graph: Kafka -> Delta -> PostgreSQL raw -> marts -> model."""
    if dataset.startswith("kafka://"):
        return 0
    if dataset.startswith("file/"):
        return 1
    if dataset.startswith("postgres://"):
        return 3 if ".marts." in dataset else 2
    return 4


def lineage_svg(graph: dict[str, Any]) -> str:
    edges = [e for e in graph.get("edges") or [] if e["from"] != "(source)"]
    if not edges:
        return "<p>No lineage events recorded yet.</p>"
    nodes = sorted({e["from"] for e in edges} | {e["to"] for e in edges}, key=lambda n: (layer_of(n), n))
    width, row_h, col_w, box_w = 1100, 34, 220, 200
    per_layer: dict[int, list[str]] = {}
    for n in nodes:
        per_layer.setdefault(layer_of(n), []).append(n)
    pos = {n: (10 + layer * col_w, 30 + i * row_h) for layer, ns in per_layer.items() for i, n in enumerate(ns)}
    height = 40 + row_h * max(len(v) for v in per_layer.values())
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-size='11'>"]
    svg += [
        f"<text x='{10 + i * col_w}' y='15' font-weight='bold'>{escape(name)}</text>" for i, name in enumerate(LAYERS)
    ]
    for e in edges:
        (x1, y1), (x2, y2) = pos[e["from"]], pos[e["to"]]
        svg.append(
            f"<line x1='{x1 + box_w}' y1='{y1 + 11}' x2='{x2}' y2='{y2 + 11}' stroke='#888'><title>{escape(e['job'])}"
            "</title></line>"
        )
    for n, (x, y) in pos.items():
        label = "/".join(n.split("/")[-2:]) if layer_of(n) == 1 else n.split("/", 3)[-1]
        svg.append(
            f"<rect x='{x}' y='{y}' width='{box_w}' height='22' rx='4' fill='#e3f2fd' stroke='#1565c0'>"
            f"<title>{escape(n)}</title></rect><text x='{x + 5}' y='{y + 15}'>{escape(label[-34:])}</text>"
        )
    svg.append("</svg>")
    jobs = graph.get("jobs") or {}
    states = _html_table(("job", "last state", "at"), [(j, v["state"], v["at"]) for j, v in sorted(jobs.items())])
    return "".join(svg) + states
