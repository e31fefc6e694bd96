{#- The ratio sum(numerator) / sum(denominator) stays within [min_rate, max_rate], overall or per group
    (`group_by`, a list of columns). Groups smaller than `min_denominator` are skipped: a merchant with
    two transactions and one fraud is not an anomaly, a category-day at 90 % fraud is.
    Returns the offending groups with their rate. -#}
{% test rate_within_bounds(model, numerator, denominator, min_rate=0, max_rate=1, group_by=none, min_denominator=1) %}
{%- if min_denominator < 1 -%}{{ exceptions.raise_compiler_error("rate_within_bounds: min_denominator must be >= 1") }}{%- endif -%}
{%- set groups = group_by or [] -%}
with rates as (
    select
        {% for column in groups %}{{ column }},{% endfor %}
        sum({{ numerator }})::numeric as numerator_total,
        sum({{ denominator }})::numeric as denominator_total
    from {{ model }}
    {% if groups %}group by {{ groups | join(", ") }}{% endif %}
)
select
    *,
    numerator_total / nullif(denominator_total, 0) as rate,
    {{ min_rate }} as min_rate,
    {{ max_rate }} as max_rate
from rates
where denominator_total >= {{ min_denominator }}
  and (numerator_total / nullif(denominator_total, 0) < {{ min_rate }}
       or numerator_total / nullif(denominator_total, 0) > {{ max_rate }})
{% endtest %}
