"""The AOT cache lifecycle against a real Java 25 JVM: train at exit, promote, use, and survive a broken cache.

The bookkeeping in :mod:`shoplake.runtime.class_sharing` relies on what HotSpot does - ``%p`` in the output
name, the cache written when the training JVM exits, a refused cache being skipped instead of failing the
start - so this test runs the JVM itself (a few seconds; the Spark driver does the same with Spark's class path).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shoplake.config import get_settings
from shoplake.jvm import artifacts_dir, newest_java
from shoplake.runtime import class_sharing

pytestmark = pytest.mark.integration


def _java(plan: class_sharing.AotPlan, jar: Path, *extra: str) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run ``java -version`` with the plan's options: the JVM's pid and its result."""
    assert plan.java_home is not None
    with subprocess.Popen(
        [str(plan.java_home / "bin" / "java"), *plan.options, *extra, "-cp", str(jar), "-version"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        out, err = proc.communicate(timeout=120)
    return proc.pid, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_cache_trained_at_exit_is_promoted_used_and_a_broken_one_skipped(tmp_path: Path) -> None:
    real = get_settings()
    settings = real.with_env(SHOPLAKE_HOME=tmp_path / "home", SPARK_AOT_CACHE="true")
    if newest_java(class_sharing.MIN_RELEASE, real.spark.aot_java_home) is None:
        pytest.skip("no Java 25.0.3+ on this machine: Spark drivers run without an AOT cache")
    jar = sorted(artifacts_dir(real, "spark").glob("*.jar"))[0]

    train = class_sharing.plan(settings, "it-aot", [jar])
    assert train.action == "train"
    _, failed = _java(train, jar)  # a run that did not vouch for its JVM (its work failed): its cache is dropped
    assert failed.returncode == 0, failed.stdout + failed.stderr
    retrain = class_sharing.plan(settings, "it-aot", [jar])
    assert retrain.action == "train" and not any(class_sharing.cache_dir(settings).glob("*.part"))
    pid, trained = _java(retrain, jar)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    class_sharing.vouch(settings, pid)
    assert class_sharing.plan(settings, "it-aot", [jar]).action == "use"  # promoted: the trainer has exited

    use = class_sharing.plan(settings, "it-aot", [jar])
    assert use.cache is not None and use.cache.parent == class_sharing.cache_dir(settings)
    _, used = _java(use, jar, "-Xlog:aot=info")
    assert used.returncode == 0 and f"Opened AOT cache {use.cache}" in used.stdout

    use.cache.write_bytes(use.cache.read_bytes()[:65536])  # damaged on disk: the JVM must still start
    _, broken = _java(use, jar)
    assert broken.returncode == 0 and "AOT cache" in broken.stdout + broken.stderr
