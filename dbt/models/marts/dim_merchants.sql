{#- One row per merchant: the attributes it trades under (category, country, region, risk) and its activity
    span. A merchant trades under one category and country; should a code ever change, the attributes of
    its earliest transaction win, so the dimension stays stable.

    Incremental by merging: every column is a min/max or "from the earliest transaction", so the new fct
    rows alone, combined with the row already held, give the same result as a rebuild from history - a
    10k-row top-up costs 10k rows, not the history of every merchant it touches. -#}
{{
    config(
        materialized='incremental',
        unique_key='merchant_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['merchant_id'], 'unique': True}],
    )
}}

with transactions as (
    select * from {{ ref('fct_transactions') }}
    {% if is_incremental() %}
    where {{ built_since_last_run() }}
    {% endif %}
),

{#- Hash-aggregate per (merchant, attributes) first: 1M rows -> a few thousand, no full sort. -#}
by_attributes as (
    select
        merchant_id,
        merchant_category,
        category_group,
        is_high_risk_category,
        merchant_country_code,
        merchant_region,
        merchant_country_risk_tier,
        min(transacted_at) as first_transaction_at,
        max(transacted_at) as last_transaction_at,
        max(built_at)      as last_built_at
    from transactions
    group by
        merchant_id, merchant_category, category_group, is_high_risk_category,
        merchant_country_code, merchant_region, merchant_country_risk_tier

    {% if is_incremental() %}
    union all

    select
        merchant_id,
        merchant_category,
        category_group,
        is_high_risk_category,
        merchant_country_code,
        merchant_region,
        merchant_country_risk_tier,
        first_transaction_at,
        last_transaction_at,
        last_built_at
    from {{ this }}
    where merchant_id in (select merchant_id from transactions)
    {% endif %}
),

attributes as (
    select distinct on (merchant_id) *
    from by_attributes
    order by merchant_id, first_transaction_at, merchant_category, merchant_country_code
),

activity as (
    select
        merchant_id,
        min(first_transaction_at) as first_transaction_at,
        max(last_transaction_at)  as last_transaction_at,
        max(last_built_at)        as last_built_at
    from by_attributes
    group by merchant_id
)

select
    attributes.merchant_id,
    attributes.merchant_category,
    attributes.category_group,
    attributes.is_high_risk_category,
    attributes.merchant_country_code,
    attributes.merchant_region,
    attributes.merchant_country_risk_tier,
    activity.first_transaction_at,
    activity.last_transaction_at,
    activity.last_built_at
from attributes
inner join activity using (merchant_id)
