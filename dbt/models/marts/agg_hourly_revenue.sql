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

with transactions as (
    select * from {{ ref('fct_transactions') }}
    {% if is_incremental() %}
    where transaction_date in (
        select distinct transaction_date from {{ ref('fct_transactions') }}
        where {{ built_since_last_run() }}
    )
    {% endif %}
)

select
    transaction_hour                                                  as revenue_hour,
    transaction_date                                                  as revenue_date,
    merchant_category,
    category_group,
    merchant_country_code,
    merchant_region,
    count(*)                                                          as transaction_count,
    count(*) filter (where is_approved)                               as approved_count,
    count(*) filter (where payment_status = 'declined')               as declined_count,
    count(*) filter (where payment_status = 'pending')                as pending_count,
    count(*) filter (where is_fraud)                                  as fraud_count,
    sum(amount_reporting)::numeric(18, 2)                             as attempted_amount,
    coalesce(sum(amount_reporting) filter (where is_approved), 0)::numeric(18, 2) as revenue,
    '{{ var("reporting_currency") | upper }}'::text                   as reporting_currency,
    max(built_at)                                                     as last_built_at
from transactions
group by transaction_hour, transaction_date, merchant_category, category_group, merchant_country_code, merchant_region
