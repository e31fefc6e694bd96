{#- One row per transaction, enriched with the lookup seeds and converted to the reporting currency.
    Incremental: only rows new or changed in raw since the last run are rebuilt; they replace their previous
    version by transaction_id, so a 10k-row top-up of a 1M-row table costs seconds. built_at (this dbt
    invocation's start) tells the downstream marts which rows are new to them. -#}
{{
    config(
        materialized='incremental',
        unique_key='transaction_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['transaction_id'], 'unique': True},
            {'columns': ['raw_read_at']},
            {'columns': ['built_at']},
            {'columns': ['transaction_date']},
            {'columns': ['customer_id']},
        ],
    )
}}

with transactions as (
    select * from {{ ref('stg_raw__transactions') }} as staged
    {% if is_incremental() %}
    where {{ new_or_changed_since_last_run('staged', 'transaction_id') }}
    {% endif %}
),

categories as (
    select * from {{ ref('merchant_categories') }}
),

countries as (
    select * from {{ ref('countries') }}
),

rates as (
    select * from {{ ref('currency_rates') }}
),

payment_methods as (
    select * from {{ ref('payment_methods') }}
)

select
    transactions.transaction_id,
    transactions.transacted_at,
    transactions.transaction_date,
    transactions.transaction_hour,
    transactions.customer_id,
    transactions.merchant_id,
    transactions.merchant_category,
    categories.category_group,
    categories.is_high_risk                                        as is_high_risk_category,
    transactions.merchant_country_code,
    merchant_country.region                                        as merchant_region,
    merchant_country.risk_tier                                     as merchant_country_risk_tier,
    transactions.ip_country_code,
    ip_country.risk_tier                                           as ip_country_risk_tier,
    transactions.ip_country_code <> transactions.merchant_country_code as is_cross_border,
    transactions.amount_minor,
    transactions.amount,
    transactions.currency_code,
    '{{ var("reporting_currency") | upper }}'::text                as reporting_currency,
    round(transactions.amount * rates.{{ reporting_rate_column() }}, 2)::numeric(18, 2) as amount_reporting,
    transactions.payment_method,
    payment_methods.payment_method_type,
    transactions.channel,
    transactions.device_id,
    transactions.device_type,
    transactions.payment_status,
    transactions.payment_status = 'approved'                       as is_approved,
    transactions.is_fraud,
    transactions.fraud_pattern,
    transactions.loaded_at,
    now()                                                           as raw_read_at,
    {{ invocation_started_at() }}                                   as built_at
from transactions
left join categories
    on transactions.merchant_category = categories.merchant_category
left join countries as merchant_country
    on transactions.merchant_country_code = merchant_country.country_code
left join countries as ip_country
    on transactions.ip_country_code = ip_country.country_code
left join rates
    on transactions.currency_code = rates.currency_code
left join payment_methods
    on transactions.payment_method = payment_methods.payment_method
{% if not is_incremental() -%}
{#- A full build stores each customer's history contiguously: the customer marts recompute touched
    customers from their history, and with rows in load order every one of a customer's ~50-100 rows sits
    on a different page (a 10k-row top-up then reads half the table's pages at random). -#}
order by transactions.customer_id, transactions.transacted_at
{%- endif %}
