"""The performance dashboard: Airflow's key metrics + streaming throughput and freshness -> one static page.

``shoplake dashboard`` (and any DAG task that calls :func:`build`) writes ``dashboard.json`` (the numbers)
and ``dashboard.html`` (tables + matplotlib SVG plots inlined, no JavaScript, no network) under
``$SHOPLAKE_HOME/reports/dashboard/``. The page is a view of the JSON: every number on it comes from
:mod:`shoplake.monitoring.airflow_stats` or the streaming progress log, never from elsewhere.
"""

from __future__ import annotations

import html
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from shoplake.airflow.rest import AirflowClient
from shoplake.config import Settings
from shoplake.files import tail_lines, write_text
from shoplake.monitoring.airflow_stats import AirflowStats, collect

SERIES_TAIL_BYTES: Final = 2_000_000  # enough progress lines for a day of 10-second batches


def dashboard_dir(settings: Settings) -> Path:
    return settings.home / "reports" / "dashboard"


def streaming_series(metrics_path: Path, now: datetime) -> dict[str, Any]:
    """Per query: every recorded batch (time, rows/s, input rows) and freshness (age of the last batch)."""
    lines = tail_lines(metrics_path, SERIES_TAIL_BYTES)
    points: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        try:
            rec = json.loads(line)
            at = datetime.fromisoformat(str(rec["timestamp"]).replace("Z", "+00:00"))
            points[str(rec["query"])].append(
                {
                    "at": at.isoformat(),
                    "rows_per_second": float(rec["processed_rows_per_second"]),
                    "input_rows": int(rec["input_rows"]),
                }
            )
        except (ValueError, KeyError, TypeError):
            continue  # the first line of the tail may be cut; foreign lines are not ours to judge
    queries = {}
    for name, pts in sorted(points.items()):
        last = datetime.fromisoformat(pts[-1]["at"])
        queries[name] = {
            "batches": len(pts),
            "rows": sum(p["input_rows"] for p in pts),
            "last_rows_per_second": pts[-1]["rows_per_second"],
            "last_batch_at": pts[-1]["at"],
            "freshness_seconds": round((now - last).total_seconds(), 1),
            "points": pts,
        }
    return {"progress_file": str(metrics_path), "queries": queries}


@dataclass(frozen=True)
class Dashboard:
    json_path: Path
    html_path: Path
    content: dict[str, Any]


def build(settings: Settings, now: datetime, limit: int = 100, client: AirflowClient | None = None) -> Dashboard:
    """Collect, then write JSON and HTML atomically (readers never see half a page)."""
    from shoplake.pipeline.config import load_streaming_config

    stats = collect(client or AirflowClient(settings), limit=limit)
    content = {
        "generated_at": now.isoformat(),
        "runs_per_dag": limit,
        "airflow": stats.as_dict(),
        "streaming": streaming_series(load_streaming_config(settings).metrics_path, now),
    }
    out = dashboard_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "dashboard.json", out / "dashboard.html"
    write_text(json_path, json.dumps(content, indent=2, sort_keys=True))
    write_text(html_path, render(content, stats))
    return Dashboard(json_path, html_path, content)


# ---- HTML ---------------------------------------------------------------------------------------------------
_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1d2433;background:#f7f8fa}
h1{margin:0 0 4px} .sub{color:#5b6478;margin-bottom:20px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:20px}
.card{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 3px #0002;min-width:150px}
.card .v{font-size:26px;font-weight:600} .card .k{color:#5b6478;font-size:13px}
section{background:#fff;border-radius:8px;padding:12px 16px;margin-bottom:16px;box-shadow:0 1px 3px #0002}
table{border-collapse:collapse;font-size:14px} td,th{padding:4px 10px;border-bottom:1px solid #e3e6ec;text-align:right}
td:first-child,th:first-child{text-align:left} .bad{color:#b42318;font-weight:600} .ok{color:#067647}
.plots{display:flex;flex-wrap:wrap;gap:12px} .plots svg{max-width:560px;height:auto}
"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _num(value: float) -> str:
    return f"{value:,.2f}"


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})  # same data, same page
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: the SVG is inlined in HTML


def _plots(content: dict[str, Any], stats: AirflowStats) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: list[tuple[str, str]] = []
    named = [d for d in stats.dags if d.runs]
    if named:
        fig, ax = plt.subplots(figsize=(6, 2.8))
        labels = [d.dag_id for d in named]
        ax.barh(labels, [d.success for d in named], color="#12b76a", label="success")
        ax.barh(labels, [d.failed for d in named], left=[d.success for d in named], color="#f04438", label="failed")
        ax.barh(
            labels, [d.unfinished for d in named], left=[d.finished for d in named], color="#98a2b3", label="unfinished"
        )
        ax.set_xlabel("DAG runs")
        ax.legend(loc="lower right", fontsize=8)
        plots.append(("DAG runs by state", _svg(fig)))
    for d in named:
        if not d.daily:
            continue
        fig, ax = plt.subplots(figsize=(6, 2.6))
        days = list(d.daily)
        ax.plot(days, [s.p50 for s in d.daily.values()], marker="o", label="p50")
        ax.plot(days, [s.p95 for s in d.daily.values()], marker="o", label="p95")
        ax.set_ylabel("task duration (s)")
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        plots.append((f"{d.dag_id}: task duration per day", _svg(fig)))
    queries = content["streaming"]["queries"]
    if queries:
        fig, ax = plt.subplots(figsize=(6, 2.8))
        for name, q in queries.items():
            times: Any = [datetime.fromisoformat(p["at"]) for p in q["points"]]
            ax.plot(times, [p["rows_per_second"] for p in q["points"]], marker=".", label=name)
        ax.set_ylabel("rows/s")
        ax.legend(fontsize=7)
        fig.autofmt_xdate()
        plots.append(("Streaming throughput per micro-batch", _svg(fig)))
    return plots


def render(content: dict[str, Any], stats: AirflowStats) -> str:
    """The page: headline cards, a table per metric, then the plots. No scripts, no external resources."""
    e = html.escape
    total_success = sum(d.success for d in stats.dags)
    total_finished = sum(d.finished for d in stats.dags)
    misses = sum(d.deadline_misses for d in stats.dags)
    cards = [
        ("dag-success-rate", "DAG success rate", _pct(total_success / total_finished if total_finished else None)),
        ("failed-runs", "failed runs", str(sum(d.failed for d in stats.dags))),
        ("deadline-misses", "deadline misses", str(misses)),
        ("queued-tasks", "queued tasks", str(stats.queued_tasks)),
        ("running-tasks", "running tasks", str(stats.running_tasks)),
    ]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Shoplake performance dashboard</title>",
        f"<style>{_CSS}</style></head><body><h1>Shoplake performance dashboard</h1>",
        f"<div class='sub'>generated {e(content['generated_at'])} · latest {content['runs_per_dag']} runs per DAG"
        " · source: Airflow REST API + streaming progress log</div><div class='cards'>",
    ]
    parts += [
        f"<div class='card'><div class='v' id='{i}'>{e(v)}</div><div class='k'>{e(k)}</div></div>" for i, k, v in cards
    ]
    parts.append(
        "</div><section><h2>DAGs</h2><table><tr><th>DAG</th><th>runs</th><th>success</th><th>failed</th>"
        "<th>unfinished</th><th>success rate</th><th>failure rate</th><th>deadline misses</th>"
        "<th>last run</th></tr>"
    )
    for d in stats.dags:
        last = d.last_run
        state = f"{last.get('state')} ({last.get('dag_run_id')})" if last else "no runs"
        parts.append(
            f"<tr id='dag-{e(d.dag_id)}'><td>{e(d.dag_id)}</td><td>{d.runs}</td><td>{d.success}</td>"
            f"<td class='{'bad' if d.failed else ''}'>{d.failed}</td><td>{d.unfinished}</td>"
            f"<td class='success-rate'>{_pct(d.success_rate)}</td><td class='failure-rate'>{_pct(d.failure_rate)}</td>"
            f"<td class='{'bad' if d.deadline_misses else 'ok'}'>{d.deadline_misses}</td><td>{e(state)}</td></tr>"
        )
    parts.append(
        "</table></section><section><h2>Task durations (successful tries, seconds)</h2><table>"
        "<tr><th>DAG / task</th><th>tries</th><th>p50</th><th>p95</th></tr>"
    )
    for d in stats.dags:
        parts += [
            f"<tr id='task-{e(d.dag_id)}.{e(t)}'><td>{e(d.dag_id)}.{e(t)}</td><td>{s.count}</td>"
            f"<td class='p50'>{_num(s.p50)}</td><td class='p95'>{_num(s.p95)}</td></tr>"
            for t, s in d.tasks.items()
        ]
    parts.append("</table></section><section><h2>Streaming throughput and freshness</h2>")
    queries = content["streaming"]["queries"]
    if queries:
        parts.append(
            "<table><tr><th>query</th><th>batches</th><th>rows</th><th>last rows/s</th>"
            "<th>last batch</th><th>freshness (s)</th></tr>"
        )
        parts += [
            f"<tr id='query-{e(n)}'><td>{e(n)}</td><td>{q['batches']}</td><td>{q['rows']}</td>"
            f"<td>{_num(q['last_rows_per_second'])}</td><td>{e(q['last_batch_at'])}</td>"
            f"<td>{q['freshness_seconds']}</td></tr>"
            for n, q in queries.items()
        ]
        parts.append("</table>")
    else:
        parts.append(f"<p>No streaming progress recorded yet ({e(content['streaming']['progress_file'])}).</p>")
    parts.append("</section><section><h2>Plots</h2><div class='plots'>")
    parts += [f"<figure><figcaption>{e(title)}</figcaption>{svg}</figure>" for title, svg in _plots(content, stats)]
    parts.append("</div></section></body></html>")
    return "\n".join(parts)
