#!/usr/bin/env bash
# Installs everything Shoplake needs on a fresh Debian/Ubuntu machine, and nothing that is already there:
# Java 17+, Maven, PostgreSQL server binaries (system packages, only when missing and only as root or with
# sudo), uv, then the locked Python environment. Safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# Headless browser of the dashboard rendering test (tests/integration/test_dashboard.py).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1 \
   && [ -z "${POSTGRES_BIN_DIR:-}" ]; then
  need_apt+=(postgresql)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "bootstrap: missing ${need_apt[*]}; install them with your package manager and re-run" >&2; exit 2
  fi
  echo "bootstrap: installing ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts a cluster on 5432 when it installs PostgreSQL; Shoplake runs its own, so stop that one.
  if [[ " ${need_apt[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null 2>&1; then
    for c in $(pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1"/"$2}'); do
      $SUDO pg_ctlcluster "${c%/*}" "${c#*/}" stop || true
    done
  fi
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv"
  python3 -m pip install --quiet uv
fi
uv sync --frozen --quiet
