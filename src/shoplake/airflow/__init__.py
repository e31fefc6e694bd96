"""What the DAGs in ``dags/`` share: default args and alerting, Params, the dbt-run sensor, the REST client,
and the task bodies. DAG files stay declarative; everything testable lives here.

Importing this package (and its ``defaults``/``params``/``sensors`` modules) must stay cheap: the DAG
processor parses every DAG file often, so Spark, pandas, scikit-learn, MLflow and dbt are only imported
inside task bodies (see ``tests/dags``).
"""
