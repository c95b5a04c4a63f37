#!/usr/bin/env bash
# The browser test tier (DESIGN.md §7, tier 6): the page of `orbitnet plan --ui` in Debian's
# headless Chromium, driven over WebDriver by chromedriver (operator/cli/tests/browser.rs).
# Screenshots are written under $CARGO_TARGET_DIR/tmp/browser/ (the path is printed).
# Installs chromium and chromium-driver from Debian when they are missing (as root); without
# them it says so and exits 0 only if ORBITNET_ALLOW_SKIP=1.
#
#   scripts/test-browser.sh [TEST FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser tier: installing chromium and chromium-driver from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    skip_tier browser "chromium and chromium-driver are missing; install them: sudo apt-get install chromium chromium-driver"
  fi
fi

# The benchmark (bench_*) is for scripts/bench-ui.sh, not for the tier.
cargo nextest run --locked -p orbitnet --test browser --run-ignored ignored-only --no-fail-fast \
  -E "not test(/^bench_/)" ${1:+-E "test(/$1/)"}
echo "browser tier: screenshots in ${CARGO_TARGET_DIR:-target}/tmp/browser/" >&2
