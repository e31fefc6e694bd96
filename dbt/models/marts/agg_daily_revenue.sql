{#- One row per (UTC day, merchant category, merchant country): volumes by outcome and revenue in the
    reporting currency. Revenue = approved payments only; attempted_amount counts every attempt.
    Incremental: every day that received newly loaded transactions is recomputed whole from the fact
    table and replaces its previous rows, so late events land in the right day. -#}
{{
    config(
        materialized='incremental',
        unique_key=['revenue_date', 'merchant_category', 'merchant_country_code'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

{{ revenue_by_period([('transaction_date', 'revenue_date')]) }}
