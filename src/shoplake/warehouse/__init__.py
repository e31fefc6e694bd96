"""The PostgreSQL warehouse: the dbt project in ``dbt/``, run for the CLI and the DAG by :mod:`.dbt_runner`."""
