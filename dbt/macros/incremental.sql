{#- Incremental watermarks.

    Two different clocks, because they answer two different questions:

    * Rows arriving from raw (fct_transactions): raw.loaded_at is stamped by the sink when its
      transaction starts, so a sink transaction that commits after our previous read can carry an older
      loaded_at than rows we already processed. Each fct row records raw_read_at, the database time at
      which the run that wrote it read raw; the next run re-reads rows loaded since that time minus a
      lookback (var incremental_lookback_minutes, longer than any sink transaction) and keeps only those
      that are new or changed (anti-join on id + loaded_at): late commits are caught, and rows already
      held are probed, never rewritten.

    * Rows arriving from fct_transactions (every other mart): each fct row carries built_at, the
      start time of the dbt invocation that wrote it. dbt invocations that build marts run one after
      another, so a strict "built_at > newest built_at I hold" never misses a row and never re-reads one. -#}

{#- The newest value of `column` in {{ this }}, as SQL: a timestamptz literal read at compile time when
    dbt is building the model (so the planner sees a constant and estimates "a few thousand new rows"
    instead of a third of the table, and picks index probes over sorting 1M rows), or the equivalent
    scalar subquery when no query may run (parsing, unit tests, where {{ this }} is a fixture). -#}
{% macro max_in_this(column) -%}
    {%- set subquery = "(select coalesce(max(" ~ column ~ "), '-infinity'::timestamptz) from " ~ this ~ ")" -%}
    {%- if execute and model.resource_type == 'model' -%}
        {%- set value = run_query("select coalesce(max(" ~ column ~ "), '-infinity'::timestamptz)::text from " ~ this).columns[0].values()[0] -%}
        '{{ value }}'::timestamptz
    {%- else -%}
        {{ subquery }}
    {%- endif -%}
{%- endmacro %}

{% macro new_or_changed_since_last_run(relation_alias, key, loaded_at='loaded_at', read_at='raw_read_at') -%}
    {{ relation_alias }}.{{ loaded_at }} >= {{ max_in_this(read_at) }}
        - interval '{{ var("incremental_lookback_minutes") | int }} minutes'
    and not exists (
        select 1
        from {{ this }} as already_built
        where already_built.{{ key }} = {{ relation_alias }}.{{ key }}
          and already_built.{{ loaded_at }} = {{ relation_alias }}.{{ loaded_at }}
    )
{%- endmacro %}

{% macro built_since_last_run(built_at='built_at', this_built_at='last_built_at') -%}
    {{ built_at }} > {{ max_in_this(this_built_at) }}
{%- endmacro %}

{#- In an incremental run, the WHERE clause that keeps the fct_transactions rows of every `key` value
    (customer, day, ...) that received rows since this model's last run: those groups are then recomputed
    whole from their full history, so a late row can never leave a partial aggregate behind. Empty in a
    full refresh. -#}
{% macro only_keys_with_new_rows(key) -%}
    {%- if is_incremental() %}
    where {{ key }} in (
        select {{ key }} from {{ ref('fct_transactions') }}
        where {{ built_since_last_run() }}
    )
    {%- endif %}
{%- endmacro %}

{#- The start of this dbt invocation as a timestamptz literal: the built_at of every row it writes. -#}
{% macro invocation_started_at() -%}
    '{{ run_started_at.isoformat() }}'::timestamptz
{%- endmacro %}
