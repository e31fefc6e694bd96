"""Data-quality audit between layers (write-audit-publish).

The streaming jobs *write* silver and ``raw.*``; :func:`shoplake.quality.audit.run_audit` *audits* them
(nulls, ranges, uniqueness, references to the dbt seeds, row volumes layer by layer) and stores every
result; :func:`shoplake.quality.audit.publish_gate` is the *publish* step's guard: the ``dbt_orchestration``
DAG calls it before dbt builds the marts (the warehouse's published product), so a failed audit stops the
marts from being rebuilt on bad data and sends an alert.
"""
