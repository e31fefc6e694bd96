{#- The body of the revenue marts, shared so the daily and hourly marts cannot drift apart in their measures.
    period_columns: fct_transactions columns that define the time grain, in output order, each as
    (source column, output name). Revenue = approved payments only; attempted_amount counts every attempt.
    Incremental: every day that received newly loaded transactions is recomputed whole from the fact table. -#}
{% macro revenue_by_period(period_columns) %}
with transactions as (
    select * from {{ ref('fct_transactions') }}
    {{ only_keys_with_new_rows('transaction_date') }}
)

select
    {%- for source, name in period_columns %}
    {{ source }} as {{ name }},
    {%- endfor %}
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
group by
    {%- for source, name in period_columns %} {{ source }},{% endfor %}
    merchant_category, category_group, merchant_country_code, merchant_region
{% endmacro %}
