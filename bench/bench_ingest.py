"""Benchmark ingestion: our pipeline vs Kafka's own producer (ceiling) vs a naive per-record producer.

All three run in the same invocation against the same local broker, with the same producer settings
(idempotence, acks=all, lz4, linger 20 ms, 1 MB batches), into a dedicated topic ``<topic>.bench`` so the
platform's real topic is not flooded:

* **ours** - ``shoplake.ingestion.run.ingest`` (generate + vectorised encode + produce + every delivery
  report), in a child process whose peak RSS is recorded; run for N and for 5N to show memory stays flat.
  Throughput is measured from the first generated chunk to the last delivery report; the wall time of the
  whole ``ingest()`` call (health checks, topic/schema ensure, verification) is reported too.
* **ceiling** - ``org.apache.kafka.tools.ProducerPerformance`` (kafka-tools jar of the broker's own
  classpath) sending pre-built random payloads of our mean record size.
* **naive** - what most public demos do: a Python dict per transaction built with ``random``/``uuid``,
  serialised one by one with confluent-kafka's ``AvroSerializer``, then ``produce`` with a callback.

Usage: ``python -m bench.bench_ingest [--n 1000000] [--naive 50000] [--no-write]`` (with the usual
environment; Kafka and the registry must be up: ``shoplake up kafka registry``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.benchmarks_md import write_section
from shoplake.config import Settings, get_settings
from shoplake.ingestion.producer import PRODUCER_TUNING

SECTION = "## Ingestion"
SEED = 42
START = "2026-01-01T00:00:00Z"


def bench_settings() -> Settings:
    settings = get_settings()
    return settings.with_env(KAFKA_TOPIC=f"{settings.kafka.topic}.bench")


# ---- children (each in its own process so peak RSS belongs to one measurement) --------------------------
def child_ours(n: int) -> dict[str, Any]:
    from shoplake.ingestion.run import ingest

    settings = bench_settings()
    started, cpu = time.perf_counter(), time.process_time()
    result = ingest(settings, n, SEED, START, run_key=f"bench-{uuid.uuid4().hex}")
    wall = time.perf_counter() - started
    return {
        "n": n,
        "pipeline_seconds": result.produce.seconds,
        "pipeline_per_second": n / result.produce.seconds,
        "generate_encode_seconds": result.encode_seconds,
        "ingest_wall_seconds": wall,
        "cpu_us_per_tx": (time.process_time() - cpu) / n * 1e6,
        "delivered": result.produce.delivered,
        "verified": bool(result.verify and result.verify.ok),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child_naive(n: int) -> dict[str, Any]:
    """Per-record dict + per-record AvroSerializer + produce: the common demo style, same producer tuning."""
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from shoplake.contracts.registry import ensure_schema
    from shoplake.contracts.schemas import schema_text
    from shoplake.ingestion.topics import ensure_topic

    settings = bench_settings()
    ensure_topic(settings)
    ensure_schema(settings)
    serializer = AvroSerializer(SchemaRegistryClient({"url": settings.registry.url}), schema_text())
    ctx = SerializationContext(settings.kafka.topic, MessageField.VALUE)
    delivered = 0

    def on_delivery(err: Any, msg: Any) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1

    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, **PRODUCER_TUNING})
    rnd = random.Random(SEED)
    categories = ["grocery", "fashion", "electronics", "travel", "digital_goods", "gift_cards"]
    countries = ["US", "GB", "DE", "FR", "ES", "IT"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fraud = rnd.random() < 0.02
        record = {
            "transaction_id": str(uuid.uuid4()),
            "event_time": start + timedelta(seconds=i),
            "customer_id": f"C{rnd.randint(0, 19_999):08d}",
            "merchant_id": f"M{rnd.randint(0, 1_999):06d}",
            "merchant_category": rnd.choice(categories),
            "merchant_country": rnd.choice(countries),
            "amount_cents": int(rnd.lognormvariate(8, 1)),
            "currency": "USD",
            "payment_method": rnd.choice(["card", "paypal", "apple_pay"]),
            "channel": rnd.choice(["web", "mobile_app", "marketplace"]),
            "device_id": f"dev-{rnd.getrandbits(64):016x}",
            "device_type": rnd.choice(["mobile", "desktop", "tablet"]),
            "ip_address": ".".join(str(rnd.randint(0, 255)) for _ in range(4)),
            "ip_country": rnd.choice(countries),
            "status": "approved",
            "is_fraud": fraud,
            "fraud_pattern": "card_testing" if fraud else None,
        }
        value = serializer(record, ctx)
        while True:
            try:
                producer.produce(settings.kafka.topic, value=value, key=record["customer_id"], on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - started
    return {
        "n": n,
        "seconds": seconds,
        "per_second": n / seconds,
        "cpu_us_per_tx": (time.process_time() - cpu) / n * 1e6,
        "delivered": delivered,
        "remaining": remaining,
    }


def run_child(mode: str, n: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_ingest", "--child", mode, "--n", str(n)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if proc.returncode != 0:
        raise SystemExit(f"{mode} child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# ---- the ceiling: Kafka's own producer benchmark -------------------------------------------------------
def mean_record_size() -> int:
    from shoplake.ingestion.avro_encoder import encode_batch
    from shoplake.ingestion.generator import generate

    batch = next(generate(50_000, SEED, datetime(2026, 1, 1, tzinfo=UTC), "size"))
    encoded = encode_batch(batch, 1)
    return round(len(encoded.data) / len(encoded))


def ceiling(settings: Settings, n: int, record_size: int) -> dict[str, Any]:
    from shoplake.ingestion.topics import ensure_topic
    from shoplake.jvm import artifacts_dir, classpath, find_java

    ensure_topic(settings)
    java = find_java(17)
    props = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "acks": "all",
        "enable.idempotence": "true",
        "linger.ms": str(PRODUCER_TUNING["linger.ms"]),
        "batch.size": str(PRODUCER_TUNING["batch.size"]),
        "compression.type": PRODUCER_TUNING["compression.type"],
        "buffer.memory": str(256 * 1024 * 1024),
    }
    cmd = [
        str(java),
        "-Xmx1g",
        "-cp",
        classpath(artifacts_dir(settings, "kafka")),
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        settings.kafka.topic,
        "--num-records",
        str(n),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        *(f"{k}={v}" for k, v in props.items()),
    ]
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - started
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = [line for line in proc.stdout.splitlines() if f"{n} records sent" in line]
    if proc.returncode != 0 or not summary:
        raise SystemExit(f"ProducerPerformance failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    rate = float(re.search(r"records sent, ([\d.]+) records/sec", summary[-1]).group(1))  # type: ignore[union-attr]
    return {
        "n": n,
        "per_second": rate,
        "wall_seconds": wall,
        "cpu_us_per_tx": cpu / n * 1e6,
        "summary": summary[-1].strip(),
        "java": str(java),
    }


# ---- report ---------------------------------------------------------------------------------------------
def machine() -> str:
    with open("/proc/meminfo") as fh:
        kib = int(fh.readline().split()[1])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores (nproc), {kib / 1024 / 1024:.0f} GB RAM, {sys.platform}; load avg at start {load}"


def render(args: argparse.Namespace, load: str, res: dict[str, Any]) -> str:
    ours, big, ceil, naive = res["ours"], res["ours_big"], res["ceiling"], res["naive"]
    ratio_naive = ours["pipeline_per_second"] / naive["per_second"]
    ratio_ceiling = ours["pipeline_per_second"] / ceil["per_second"]
    target = "meets" if ours["pipeline_per_second"] >= 100_000 else "MISSES"
    target20 = "meets" if ratio_naive >= 20 else "MISSES"
    lines = [
        SECTION,
        "",
        f"- Machine: {load}",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Command: `.venv/bin/python -m bench.bench_ingest --n {args.n} --naive {args.naive}`",
        "- Broker: the local single-node Kafka of `shoplake up kafka` on the same machine (it shares the 2 cores).",
        "- Producer settings (all three): enable.idempotence, acks=all, lz4, linger.ms=20, batch.size=1 MB.",
        f"- Record size: {res['record_size']} bytes (mean Confluent-framed Avro transaction).",
        "",
        "| pipeline | N | throughput (tx/s) | client CPU (us/tx) | notes |",
        "| --- | --- | --- | --- | --- |",
        f"| ours: generate + encode + produce + all delivery reports | {ours['n']:,} | "
        f"{ours['pipeline_per_second']:,.0f} | {ours['cpu_us_per_tx']:.1f} | whole `ingest()` incl. health checks "
        f"+ verify: {ours['ingest_wall_seconds']:.1f} s; generate+encode {ours['generate_encode_seconds']:.1f} s |",
        f"| ours, 5x larger run | {big['n']:,} | {big['pipeline_per_second']:,.0f} | {big['cpu_us_per_tx']:.1f} | "
        f"whole `ingest()`: {big['ingest_wall_seconds']:.1f} s |",
        f"| ceiling: Kafka ProducerPerformance (Java), random payload, no key | {ceil['n']:,} | "
        f"{ceil['per_second']:,.0f} | {ceil['cpu_us_per_tx']:.1f} | `{ceil['summary'][:80]}...` |",
        f"| naive: dict + AvroSerializer + produce per record | {naive['n']:,} | {naive['per_second']:,.0f} | "
        f"{naive['cpu_us_per_tx']:.1f} | delivered {naive['delivered']:,} |",
        "",
        f"- Target >= 100,000 tx/s: **{target}** ({ours['pipeline_per_second']:,.0f} tx/s).",
        f"- Target >= 20x naive: **{target20}** ({ratio_naive:.1f}x in throughput; "
        f"{naive['cpu_us_per_tx'] / ours['cpu_us_per_tx']:.1f}x in client CPU per transaction).",
        f"- Ratio to the raw ceiling: {ratio_ceiling:.2f} (ours / ProducerPerformance).",
        f"- Peak RSS of the ingest process: {ours['peak_rss_mb']:,.0f} MB for N={ours['n']:,} vs "
        f"{big['peak_rss_mb']:,.0f} MB for N={big['n']:,} (chunks of 50,000; memory does not grow with N).",
        "- Client CPU = user+system seconds of the producing process (all threads) per transaction: the",
        "  load-independent cost. Wall-clock throughput depends on how much of the 2 cores the broker and",
        "  other processes leave free (load average above), so it varies between runs.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000_000, help="transactions for ours and the ceiling")
    parser.add_argument("--naive", type=int, default=50_000, help="transactions for the naive baseline")
    parser.add_argument("--child", choices=("ours", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    if args.child == "ours":
        print(json.dumps(child_ours(args.n)))
        return 0
    if args.child == "naive":
        print(json.dumps(child_naive(args.n)))
        return 0

    from shoplake.ingestion.run import check_health

    settings = bench_settings()
    check_health(settings)
    load = machine()
    res: dict[str, Any] = {"record_size": mean_record_size()}
    res["naive"] = run_child("naive", args.naive)
    print("naive", res["naive"], flush=True)
    res["ceiling"] = ceiling(settings, args.n, res["record_size"])
    print("ceiling", res["ceiling"], flush=True)
    res["ours"] = run_child("ours", args.n)
    print("ours", res["ours"], flush=True)
    res["ours_big"] = run_child("ours", 5 * args.n)
    print("ours 5x", res["ours_big"], flush=True)
    text = render(args, load, res)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
