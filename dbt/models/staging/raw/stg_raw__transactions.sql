{#- Rename and cast only: one row per raw transaction in warehouse naming (`<event>_at` timestamptz,
    UTC calendar date/hour, `_code` for ISO codes, `is_` booleans) and the amount in currency units next to
    the exact minor units (every supported currency has 2 minor digits; seed currency_rates tests that). -#}
with source as (
    select * from {{ source('raw', 'transactions') }}
)

select
    transaction_id::text                                                as transaction_id,
    event_time::timestamptz                                             as transacted_at,
    (event_time at time zone 'UTC')::date                               as transaction_date,
    date_trunc('hour', event_time at time zone 'UTC') at time zone 'UTC' as transaction_hour,
    customer_id::text                                                   as customer_id,
    merchant_id::text                                                   as merchant_id,
    merchant_category::text                                             as merchant_category,
    merchant_country::text                                              as merchant_country_code,
    amount_cents::bigint                                                as amount_minor,
    {{ minor_to_major('amount_cents') }}                                as amount,
    currency::text                                                      as currency_code,
    payment_method::text                                                as payment_method,
    channel::text                                                       as channel,
    device_id::text                                                     as device_id,
    device_type::text                                                   as device_type,
    ip_address::text                                                    as ip_address,
    ip_country::text                                                    as ip_country_code,
    status::text                                                        as payment_status,
    is_fraud::boolean                                                   as is_fraud,
    fraud_pattern::text                                                 as fraud_pattern,
    loaded_at::timestamptz                                              as loaded_at
from source
