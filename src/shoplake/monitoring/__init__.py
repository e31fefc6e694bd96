"""Health of the streaming lakehouse: Delta table checks, streaming progress metrics, the JSON health report."""
