#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv (env side only) and score the project's example
# answers against their gold tables, printing the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh ""
mkdir -p runs
exec .venv/bin/wideseek score --tasks examples/tasks.jsonl --gold-dir examples/gold \
  --responses examples/responses.jsonl --out runs/example_scores.jsonl "$@"
