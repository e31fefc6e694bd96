"""Parsing the driver JVM's native memory tracking diff (bench/native_memory.py)."""

from __future__ import annotations

import pytest

from bench.native_memory import JAVA_OPTIONS_ENV, NMT_OPTION, parse_diff, render, with_tracking

pytestmark = pytest.mark.unit

# Shaped like `jcmd <pid> VM.native_memory summary.diff scale=KB` of JDK 17 (values made up).
DIFF = """\
12345:

Native Memory Tracking:

(Omitting categories weighting less than 1KB)

Total: reserved=7839503KB +20480KB, committed=2472903KB +30720KB

-                 Java Heap (reserved=2097152KB, committed=2097152KB)
                            (mmap: reserved=2097152KB, committed=2097152KB)

-                     Class (reserved=1048648KB -1024KB, committed=200704KB +2048KB)
                            (classes #30485 +120)

-                      Code (reserved=247726KB, committed=97586KB +25600KB)
                            (malloc=38KB #595)

-                  Compiler (reserved=167KB, committed=4263KB -1024KB)
                            (arena=165KB #5)
"""


def test_the_diff_gives_each_areas_committed_size_and_change_in_mb() -> None:
    areas = parse_diff(DIFF)
    assert areas["Total"] == (2472903 / 1024, 30.0)
    assert areas["Java Heap"] == (2048.0, 0.0)
    assert areas["Class"] == (196.0, 2.0)
    assert areas["Code"] == (97586 / 1024, 25.0)
    assert areas["Compiler"] == (4263 / 1024, -1.0)


def test_output_without_a_summary_is_refused() -> None:
    with pytest.raises(ValueError, match="not a native memory summary diff"):
        parse_diff("12345:\nNative memory tracking is not enabled\n")


def test_the_report_ranks_growth_and_shows_what_nmt_does_not_see() -> None:
    lines = render({"minutes": 10.0, "areas": parse_diff(DIFF), "rss_growth_mb": 50.0}, top=2)
    text = "\n".join(lines)
    assert lines.index("| Code | 95.3 | +25.0 | +2.50 |") < lines.index("| Class | 196.0 | +2.0 | +0.20 |")
    assert "Compiler" not in text  # beyond the top 2
    assert "| **all tracked areas** | 2,414.9 | +30.0 | +3.00 |" in text
    assert "| RSS growth not tracked (RocksDB, zlib/zstd, glibc caches) | | +20.0 | +2.00 |" in text
    assert render({}) == []


def test_tracking_is_added_once_and_keeps_other_java_options() -> None:
    env = with_tracking({JAVA_OPTIONS_ENV: "-Xss2m", "PATH": "/bin"})
    assert env[JAVA_OPTIONS_ENV] == f"-Xss2m {NMT_OPTION}" and env["PATH"] == "/bin"
    assert with_tracking(env) == env
    assert with_tracking({})[JAVA_OPTIONS_ENV] == NMT_OPTION
