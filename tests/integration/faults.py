"""Fault injection for the fault-tolerance tests: stop and restart one real service of the local stack.

Services are stopped through the stack's own supervisor (:mod:`shoplake.stack.process`, by pidfile, so
only this stack's processes are ever signalled) and started again with :func:`shoplake.stack.up`, which
waits for the service's real health check. Unlike ``shoplake down`` these helpers stop exactly one service,
not its dependents (stopping PostgreSQL must not take MLflow with it: the fault is the database alone).
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from confluent_kafka.admin import AdminClient

from shoplake import stack as local_stack
from shoplake.config import Settings
from shoplake.ingestion.topics import KafkaUnavailableError, ensure_topic
from shoplake.ingestion.verify import end_offsets
from shoplake.stack import process, service

STOP_TIMEOUT = 60.0


def stop(settings: Settings, name: str, sig: signal.Signals | None = None) -> None:
    """Stop every process of service ``name`` (its own stop signal unless ``sig``, e.g. SIGKILL, is given)."""
    for proc in reversed(service.get(name).processes):
        process.stop(settings.home, proc.name, STOP_TIMEOUT, sig or proc.stop_signal)
    assert not service.get(name).health(settings).ok, f"{name} still healthy after being stopped"


def start(settings: Settings, name: str) -> None:
    """Start service ``name`` again and wait until it is healthy."""
    local_stack.up(settings, [name])
    assert service.get(name).health(settings).ok


def restart(settings: Settings, name: str, sig: signal.Signals | None = None) -> None:
    stop(settings, name, sig)
    start(settings, name)


@contextmanager
def private_topic(stack: Settings, prefix: str, faulted: str) -> Iterator[Settings]:
    """``stack`` with a fresh topic of its own; afterwards ``faulted`` is healthy again and the topic gone.

    A fault test leaves its service stopped when it fails half-way: starting it again here keeps the next
    test's stack whole.
    """
    ours = replace(stack, kafka_topic=f"{prefix}-{uuid.uuid4().hex[:10]}")
    ensure_topic(ours)
    yield ours
    start(stack, faulted)
    AdminClient({"bootstrap.servers": stack.kafka_bootstrap_servers}).delete_topics([ours.kafka_topic])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0, interval: float = 0.1) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def settled_end_offsets(settings: Settings, timeout: float = 120.0) -> dict[int, int]:
    """The topic's end offsets once every partition answers again.

    Right after a broker (re)start it is healthy - it answers metadata requests - but for a moment may
    still refuse offset requests for partitions it is taking leadership of (NOT_LEADER_FOR_PARTITION).
    """
    found: dict[int, int] = {}

    def readable() -> bool:
        try:
            found.update(end_offsets(settings))
        except KafkaUnavailableError:
            return False
        return True

    wait_for(readable, "every partition to answer an offset request", timeout=timeout, interval=0.5)
    return found
