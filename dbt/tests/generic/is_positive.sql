{#- Every non-null value of the column is strictly greater than zero (amounts, counts that cannot be 0).
    Failing rows are returned whole so a failure points at the offending record. -#}
{% test is_positive(model, column_name) %}
select *
from {{ model }}
where {{ column_name }} <= 0
{% endtest %}
