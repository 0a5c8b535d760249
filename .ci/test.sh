#!/usr/bin/env bash
# Set up .venv (see scripts/setup.sh), lint, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check wideseek_env wideseek_rl benchmarks tests
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
