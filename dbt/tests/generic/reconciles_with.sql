{#- An aggregate mart reconciles with the relation it summarises: the total of `measure` over the model
    equals the total of `to_measure` over `to` (optionally filtered by `to_where`), within `tolerance`.
    Returns one row with both totals when they differ, so the failure message shows the gap. -#}
{% test reconciles_with(model, measure, to, to_measure, to_where=none, tolerance=0) %}
with model_total as (
    select coalesce(sum({{ measure }}), 0) as total from {{ model }}
),
reference_total as (
    select coalesce(sum({{ to_measure }}), 0) as total
    from {{ to }}
    {% if to_where %}where {{ to_where }}{% endif %}
)
select
    model_total.total as model_total,
    reference_total.total as reference_total,
    model_total.total - reference_total.total as difference
from model_total
cross join reference_total
where abs(model_total.total - reference_total.total) > {{ tolerance }}
{% endtest %}
