"""Bronze rows -> silver and quarantine: decode, validate, enrich, deduplicate."""
