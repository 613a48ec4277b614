#!/usr/bin/env bash
# Lint and type check: ruff (the rule set in pyproject.toml [tool.ruff.lint]) on the whole tree,
# mypy (pyproject.toml [tool.mypy]: engine, tools, memory, datadir). Both must report nothing.
#   bash scripts/lint.sh
# ruff, mypy and the stubs are pinned in requirements-test.txt (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
status=0
"$PYTHON" -m ruff check . || status=1
"$PYTHON" -m mypy || status=1
exit $status
