"""The event-time hour gold aggregates over, defined once.

customer_behaviour's large distinct counts are recounted from values kept per hour
(:mod:`.window_values`): that table must cut the hours exactly as the aggregation does, or a fill would count
another hour's rows.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as sf


def hour() -> Column:
    """The tumbling one-hour window (a ``start``/``end`` struct) an event's ``event_time`` falls in."""
    return sf.window("event_time", "1 hour")
