{#- No timestamp lies in the future beyond the allowed clock skew (var max_clock_skew_minutes).
    A future event time means a producer clock or a parsing bug, and it would make incremental
    watermarks skip every row loaded afterwards. -#}
{% test not_in_future(model, column_name, skew_minutes=none) %}
{%- set skew = skew_minutes if skew_minutes is not none else var("max_clock_skew_minutes") -%}
select *
from {{ model }}
where {{ column_name }} > now() + interval '{{ skew | int }} minutes'
{% endtest %}
