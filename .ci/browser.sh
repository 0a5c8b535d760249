#!/usr/bin/env bash
# Install headless Chromium and ChromeDriver from the system package manager when missing.
#
# Usage: bash .ci/browser.sh   (called by .ci/setup.sh when the "test" extra is installed)
#
# The viewer's browser test (tests/env/test_viewer_browser.py) drives Debian's `chromium` through
# `chromium-driver` with selenium; nothing downloads a browser of its own. Without root or apt
# the script says so and returns 0: the browser test then skips with that reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "[browser] chromium/chromedriver missing and apt-get unavailable (or not root):" \
       "the browser test will skip" >&2
  exit 0
fi
echo "[browser] installing chromium and chromium-driver (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
echo "[browser] $(chromium --version 2>/dev/null || echo 'chromium installed')" >&2
