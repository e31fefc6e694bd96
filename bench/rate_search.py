"""Finding the highest ingest rate the streaming layer keeps up with (``bench_freshness.py --find-rate``).

The issue-9 load test must run "at the highest ingest rate the streaming layer keeps up with on this
machine", so that rate is measured, not guessed: short probes at rising rates, each a complete freshness
run (fresh lane, the continuous service started anew, produce, drain), judged on what the long run then
reports - the consumer lag trend. The search stops at the first rate that falls behind; the load test runs
at the last one that kept up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LAG_SLOPE_TOLERANCE = 0.05
"""A probe keeps up while every lag grows by less than this fraction of the rate per second (5 % of the
events arriving each second): at a steady rate the lag saw-tooths with the trigger interval, so an exact
zero slope over a short probe is noise, while a pipeline that falls behind grows by a large fraction."""

MAX_PRODUCER_BEHIND_S = 1.0
"""A probe whose producer fell further behind its schedule did not offer the rate at all: it does not count."""


@dataclass(frozen=True)
class Probe:
    rate: int
    kept_up: bool
    reason: str
    lag_slope_per_s: float  # end-to-end (Kafka -> PostgreSQL raw) lag trend
    drain_seconds: float


def parse_rates(spec: str) -> list[int]:
    """``START,STEP,MAX`` -> the rates to probe, rising (ValueError with the expected form otherwise)."""
    parts = spec.split(",")
    try:
        start, step, top = (int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"--find-rate {spec!r}: expected START,STEP,MAX as three integers, e.g. 1000,500,4000"
        ) from None
    if start < 1 or step < 1 or top < start:
        raise ValueError(f"--find-rate {spec!r}: needs START >= 1, STEP >= 1 and MAX >= START")
    return list(range(start, top + 1, step))


def judge(rate: int, produced: dict[str, Any], res: dict[str, Any]) -> Probe:
    """Did the pipeline keep up at ``rate``? (one probe's producer stats and measurements)."""
    lags = res["summary"]["lag"]
    end_to_end = float(lags["kafka -> PostgreSQL raw"]["slope_per_s"])
    worst = max(lags.items(), key=lambda kv: float(kv[1]["slope_per_s"]))
    limit = LAG_SLOPE_TOLERANCE * rate
    if produced["max_behind_s"] > MAX_PRODUCER_BEHIND_S:
        reason = f"the producer fell {produced['max_behind_s']:.1f} s behind: the rate was not offered"
    elif res["raw_rows"] < produced["sent"]:
        reason = f"only {res['raw_rows']:,} of {produced['sent']:,} rows reached PostgreSQL within the drain time"
    elif float(worst[1]["slope_per_s"]) > limit:
        reason = f"{worst[0]} lag grows {float(worst[1]['slope_per_s']):+.1f} events/s (limit {limit:.1f})"
        if float(worst[1]["slope_per_s"]) >= 0.99 * rate:  # nothing at all was processed while judged
            reason += "; nothing was committed in the judged window: is --warmup-seconds shorter than start-up?"
    else:
        return Probe(rate, True, "lag trend flat", end_to_end, float(res["drain_seconds"]))
    return Probe(rate, False, reason, end_to_end, float(res["drain_seconds"]))


def search(rates: list[int], probe: Callable[[int], Probe]) -> tuple[int | None, list[Probe]]:
    """Probe ``rates`` in rising order until one falls behind; the highest that kept up (None: not even the first)."""
    probes: list[Probe] = []
    best = None
    for rate in rates:
        result = probe(rate)
        probes.append(result)
        print(f"probe {rate}/s: {'keeps up' if result.kept_up else 'FALLS BEHIND'} ({result.reason})", flush=True)
        if not result.kept_up:
            break
        best = rate
    return best, probes


def render_probes(probes: list[Probe], probe_seconds: float) -> str:
    """The rate search as a Markdown table (appended to the load-test section)."""
    lines = [
        "",
        f"Rate search (`--find-rate`): probes judged over {probe_seconds:g} s after the warm-up, each a fresh lane "
        "and service; a probe keeps up "
        f"while every lag trend stays below {LAG_SLOPE_TOLERANCE:.0%} of the rate per second, all rows drain and "
        "the producer holds its schedule. The run above used the highest rate that kept up.",
        "",
        "| rate /s | keeps up | end-to-end lag trend | drain s | why |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in probes:
        lines.append(
            f"| {p.rate:,} | {'yes' if p.kept_up else 'no'} | {p.lag_slope_per_s:+.1f} events/s | "
            f"{p.drain_seconds:.1f} | {p.reason} |"
        )
    return "\n".join(lines) + "\n"
