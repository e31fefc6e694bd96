"""Delta mechanics with no business logic: file index, idempotent appends, table properties, compaction,
log cleanup, and reading streaming checkpoints."""
