{#- The combination of `columns` is unique: the declared grain of an aggregate mart. Returns each
    duplicated key with how often it occurs. -#}
{% test unique_combination(model, columns) %}
select
    {{ columns | join(", ") }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(", ") }}
having count(*) > 1
{% endtest %}
