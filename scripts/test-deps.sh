#!/usr/bin/env bash
# System packages some tests use against implementations we did not write:
#   golang-go + golang-golang-x-mod-dev  Go's sumdb/note and sumdb/tlog verify our log.
#   librsvg2-bin                         rsvg-convert renders the coalition SVG pictures.
#   chromium + chromium-driver           the dashboard's page tests drive real Chromium (Selenium).
#   haproxy                              the replica test runs the docs' HAProxy configuration.
# Installed from Debian's registry when missing and we are root; when they cannot be
# installed, the tests that need them skip with a loud reason (never silently pass).
set -u
need=()
command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ] || need+=(golang-go golang-golang-x-mod-dev)
command -v rsvg-convert >/dev/null 2>&1 || need+=(librsvg2-bin)
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || need+=(chromium chromium-driver)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "test-deps: not root; cannot install ${need[*]} (tests that need them will skip)" >&2
  exit 0
fi
echo "test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
  echo "test-deps: WARNING: could not install ${need[*]}; tests that need them will skip" >&2
fi
exit 0
