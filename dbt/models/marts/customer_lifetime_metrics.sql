{#- One row per customer: lifetime value and behaviour metrics (ML features and CRM segments read these).
    Revenue counts approved payments only, in the reporting currency. Incremental like dim_customers. -#}
{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['customer_id'], 'unique': True}],
    )
}}

with transactions as (
    select
        customer_id, merchant_id, device_id, ip_country_code, transaction_date, transacted_at,
        payment_status, is_approved, is_fraud, amount_reporting, built_at
    from {{ ref('fct_transactions') }}
    {{ only_keys_with_new_rows('customer_id') }}
)

select
    customer_id,
    count(*)                                                        as transaction_count,
    count(*) filter (where is_approved)                             as approved_count,
    count(*) filter (where payment_status = 'declined')             as declined_count,
    count(*) filter (where is_fraud)                                as fraud_count,
    count(*) filter (where is_fraud) > 0                            as has_fraud_history,
    coalesce(sum(amount_reporting) filter (where is_approved), 0)::numeric(18, 2) as lifetime_revenue,
    round(avg(amount_reporting) filter (where is_approved), 2)::numeric(18, 2)    as avg_approved_amount,
    max(amount_reporting)::numeric(18, 2)                           as max_amount,
    count(distinct merchant_id)                                     as distinct_merchants,
    count(distinct device_id)                                       as distinct_devices,
    count(distinct ip_country_code)                                 as distinct_ip_countries,
    count(distinct transaction_date)                                as active_days,
    min(transacted_at)                                              as first_transaction_at,
    max(transacted_at)                                              as last_transaction_at,
    (max(transaction_date) - min(transaction_date))                 as tenure_days,
    '{{ var("reporting_currency") | upper }}'::text                 as reporting_currency,
    max(built_at)                                                   as last_built_at
from transactions
group by customer_id
