{#- One row per (UTC day, merchant): fraud volume and rate, with the merchant's category so category/day
    summaries are a plain group-by. fraud_rate = fraud_count / transaction_count; approved_fraud_count is
    the fraud that got through the gateway (the loss the model must prevent). Incremental by affected day. -#}
{{
    config(
        materialized='incremental',
        unique_key=['fraud_date', 'merchant_id'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

with transactions as (
    select * from {{ ref('fct_transactions') }}
    {{ only_keys_with_new_rows('transaction_date') }}
)

select
    transaction_date                                                    as fraud_date,
    merchant_id,
    merchant_category,
    merchant_country_code,
    count(*)                                                            as transaction_count,
    count(*) filter (where is_fraud)                                    as fraud_count,
    count(*) filter (where is_fraud and is_approved)                    as approved_fraud_count,
    round(count(*) filter (where is_fraud)::numeric / count(*), 6)::numeric(9, 6) as fraud_rate,
    sum(amount_reporting)::numeric(18, 2)                               as amount,
    coalesce(sum(amount_reporting) filter (where is_fraud), 0)::numeric(18, 2) as fraud_amount,
    count(distinct fraud_pattern)                                       as distinct_fraud_patterns,
    '{{ var("reporting_currency") | upper }}'::text                     as reporting_currency,
    max(built_at)                                                       as last_built_at
from transactions
group by transaction_date, merchant_id, merchant_category, merchant_country_code
