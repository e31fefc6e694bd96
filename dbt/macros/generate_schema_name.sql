{#- Use a model's custom schema as-is (staging, marts, reference) instead of dbt's default
    "<target schema>_<custom>", so every target writes to the same well-known schemas that the
    ML pipeline and dashboards query. Models without a custom schema land in the target schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
