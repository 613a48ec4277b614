#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh machine, then runs pytest.
#   bash scripts/test.sh [pytest args...]
# System packages (Debian): chromium (browser tests), postgresql (store tests), bubblewrap
# (code-execution sandbox). Python packages: requirements.txt + requirements-test.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need_apt[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "test.sh: cannot install ${need_apt[*]} (not root or no apt-get); tests needing them will say so" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
pip_log=$(mktemp)
if ! "$PYTHON" -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-test.txt >"$pip_log" 2>&1; then
  cat "$pip_log" >&2
  echo "test.sh: pip install failed" >&2
  exit 1
fi
grep -v -e "Location '.*' is ignored" -e "Running pip as the 'root' user" "$pip_log" || true
rm -f "$pip_log"

# Lint and types first (ruff + mypy, zero findings: scripts/lint.sh); skip with LINT=0 when running a part
if [ "${LINT:-1}" != "0" ]; then
  PYTHON="$PYTHON" bash scripts/lint.sh
fi

exec "$PYTHON" -m pytest -q -p no:cacheprovider "$@"
