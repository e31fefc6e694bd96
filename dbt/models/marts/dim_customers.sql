{#- One row per customer: who they are as seen from their transactions (home country = the country their
    traffic most often comes from, ties to the alphabetically first; preferred channel likewise) and when
    they were first/last seen.
    Incremental: customers with newly loaded transactions are recomputed from their full history. -#}
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
    select * from {{ ref('fct_transactions') }}
    {{ only_keys_with_new_rows('customer_id') }}
),

{#- One hash aggregate over the customers' history, (customer, IP country, channel) -> count and times;
    the modes and the activity span are then read from that small table instead of sorting every
    customer's rows once per attribute. -#}
combinations as (
    select
        customer_id,
        ip_country_code,
        channel,
        count(*)           as n,
        min(transacted_at) as first_transaction_at,
        max(transacted_at) as last_transaction_at,
        max(built_at)      as last_built_at
    from transactions
    group by customer_id, ip_country_code, channel
),

home_country as (
    select distinct on (customer_id) customer_id, ip_country_code as home_country_code
    from (
        select customer_id, ip_country_code, sum(n) as n
        from combinations
        group by customer_id, ip_country_code
    ) as by_country
    order by customer_id, n desc, ip_country_code
),

preferred_channel as (
    select distinct on (customer_id) customer_id, channel as preferred_channel
    from (
        select customer_id, channel, sum(n) as n
        from combinations
        group by customer_id, channel
    ) as by_channel
    order by customer_id, n desc, channel
),

activity as (
    select
        customer_id,
        min(first_transaction_at) as first_transaction_at,
        max(last_transaction_at)  as last_transaction_at,
        max(last_built_at)        as last_built_at
    from combinations
    group by customer_id
),

countries as (
    select * from {{ ref('countries') }}
)

select
    activity.customer_id,
    home_country.home_country_code,
    countries.region as home_region,
    preferred_channel.preferred_channel,
    activity.first_transaction_at,
    activity.last_transaction_at,
    activity.last_built_at
from activity
inner join home_country using (customer_id)
inner join preferred_channel using (customer_id)
left join countries
    on home_country.home_country_code = countries.country_code
