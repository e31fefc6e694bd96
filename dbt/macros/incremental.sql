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

{% macro new_or_changed_since_last_run(relation_alias, key, loaded_at='loaded_at', read_at='raw_read_at') -%}
    {{ relation_alias }}.{{ loaded_at }} >= (
        select coalesce(max({{ read_at }}), '-infinity'::timestamptz)
               - interval '{{ var("incremental_lookback_minutes") | int }} minutes'
        from {{ this }}
    )
    and not exists (
        select 1
        from {{ this }} as already_built
        where already_built.{{ key }} = {{ relation_alias }}.{{ key }}
          and already_built.{{ loaded_at }} = {{ relation_alias }}.{{ loaded_at }}
    )
{%- endmacro %}

{% macro built_since_last_run(built_at='built_at', this_built_at='last_built_at') -%}
    {{ built_at }} > (select coalesce(max({{ this_built_at }}), '-infinity'::timestamptz) from {{ this }})
{%- endmacro %}

{#- The start of this dbt invocation as a timestamptz literal: the built_at of every row it writes. -#}
{% macro invocation_started_at() -%}
    '{{ run_started_at.isoformat() }}'::timestamptz
{%- endmacro %}
