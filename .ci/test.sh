#!/usr/bin/env bash
# Set up .venv (see .ci/setup.sh), lint, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
.venv/bin/ruff check wideseek_env wideseek_rl benchmarks tests
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
