{#- Incremental watermarks.

    Two different clocks, because they answer two different questions:

    * Rows arriving from raw (fct_transactions): raw.loaded_at is stamped by the loader when its
      transaction starts, so a loader transaction that commits after our previous run can carry an
      older loaded_at than rows we already processed. We therefore re-read a lookback window
      (var incremental_lookback_minutes) before the newest loaded_at we hold, and keep only rows that
      are new or changed there (anti-join on id + loaded_at): late commits are caught, and the window
      costs an index probe per row instead of rewriting rows we already hold.

    * Rows arriving from fct_transactions (every other mart): each fct row carries built_at, the
      start time of the dbt invocation that wrote it. dbt invocations that build marts run one after
      another, so a strict "built_at > newest built_at I hold" never misses a row and never re-reads one. -#}

{% macro new_or_changed_since_last_run(relation_alias, key, loaded_at='loaded_at') -%}
    {{ relation_alias }}.{{ loaded_at }} >= (
        select coalesce(max({{ loaded_at }}), '-infinity'::timestamptz)
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
