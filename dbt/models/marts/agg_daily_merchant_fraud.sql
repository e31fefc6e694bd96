{#- One row per (UTC day, merchant): fraud volume and rate, with the merchant's category so category/day
    summaries are a plain group-by. The category and country are dim_merchants' (one per merchant): grouping
    by the rows' own codes split a merchant's day in two whenever they differed (a re-categorised merchant,
    two worlds or a backfill in one warehouse) and broke the declared grain. fraud_rate = fraud_count / transaction_count; approved_fraud_count is
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
),

daily as (
    select
        transaction_date                                                as fraud_date,
        merchant_id,
        count(*)                                                        as transaction_count,
        count(*) filter (where is_fraud)                                as fraud_count,
        count(*) filter (where is_fraud and is_approved)                as approved_fraud_count,
        sum(amount_reporting)                                           as amount,
        sum(amount_reporting) filter (where is_fraud)                   as fraud_amount,
        count(distinct fraud_pattern)                                   as distinct_fraud_patterns,
        max(built_at)                                                   as last_built_at
    from transactions
    group by transaction_date, merchant_id
)

select
    daily.fraud_date,
    daily.merchant_id,
    merchants.merchant_category,
    merchants.merchant_country_code,
    daily.transaction_count,
    daily.fraud_count,
    daily.approved_fraud_count,
    round(daily.fraud_count::numeric / daily.transaction_count, 6)::numeric(9, 6) as fraud_rate,
    daily.amount::numeric(18, 2)                                        as amount,
    coalesce(daily.fraud_amount, 0)::numeric(18, 2)                     as fraud_amount,
    daily.distinct_fraud_patterns,
    '{{ var("reporting_currency") | upper }}'::text                     as reporting_currency,
    daily.last_built_at
from daily
left join {{ ref('dim_merchants') }} as merchants using (merchant_id)
