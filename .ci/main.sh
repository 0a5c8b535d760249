#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv (env side only: no torch), build the embedded
# default world (once; cached in ~/.cache/wideseek or $WIDESEEK_CACHE) and run the width-scaling
# benchmark with the scripted baseline on its test split: lead 10 turns, subagents 20 turns,
# widths 1-16. Prints the table and writes runs/main/bench-width/{summary.json,results.md,
# scaling.png} (plus one resumable run folder per width, with every episode's trace).
#
# Extra arguments go to `wideseek bench width`, e.g. `--limit 100` for a quicker run, or
# `--policy openai --base-url http://host:8000/v1 --model NAME` for a real model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh ""
exec .venv/bin/wideseek bench width --widths 1,2,4,8,16 --policy scripted \
  --world default --split test --out runs/main/bench-width "$@"
