{#- Money helpers. Amounts travel as integer minor units (cents) to stay exact; marts convert once. -#}

{#- Minor units (cents) to currency units, exact numeric. -#}
{% macro minor_to_major(column, decimals=2) -%}
    ({{ column }}::numeric / {{ 10 ** decimals }})::numeric(18, {{ decimals }})
{%- endmacro %}

{#- Name of the currency_rates column that converts one unit into the reporting currency. Fails at
    compile time on a currency the seed has no rate column for, instead of producing NULL amounts. -#}
{% macro reporting_rate_column() -%}
    {%- set currency = var("reporting_currency") | upper -%}
    {%- if currency not in ["EUR", "USD"] -%}
        {{ exceptions.raise_compiler_error("var reporting_currency must be EUR or USD (columns of seed currency_rates), got " ~ currency) }}
    {%- endif -%}
    {{ "rate_to_" ~ (currency | lower) }}
{%- endmacro %}
