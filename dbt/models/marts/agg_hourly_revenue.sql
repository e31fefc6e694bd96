{#- One row per (UTC hour, merchant category, merchant country): the hourly counterpart of
    agg_daily_revenue (same measures, same definitions). Incremental by affected day, like the daily mart. -#}
{{
    config(
        materialized='incremental',
        unique_key=['revenue_hour', 'merchant_category', 'merchant_country_code'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

{{ revenue_by_period([('transaction_hour', 'revenue_hour'), ('transaction_date', 'revenue_date')]) }}
