#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv (env side only: no torch), build the embedded
# default world (tier v2; once, about a minute; cached in ~/.cache/wideseek or $WIDESEEK_CACHE)
# and run the width-scaling benchmark with the scripted baseline on 200 of its 400 test tasks
# (spread evenly over the split): lead 10 turns, subagents 20 turns, widths 1-16. Prints the
# table and writes runs/main/bench-width/{summary.json,results.md,scaling.png} (plus one
# resumable run folder and one browsable page per width, with every episode's trace).
#
# Extra arguments go to `wideseek bench width` and win over these, e.g. `--limit 400` for every
# test task, `--world default-easy` for the templated tier, or `--policy openai --base-url
# http://host:8000/v1 --model NAME --api-key-env KEY_VAR` for a real model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh ""
exec .venv/bin/wideseek bench width --widths 1,2,4,8,16 --policy scripted \
  --world default --split test --limit 200 --out runs/main/bench-width "$@"
