#!/bin/sh
# Browser tests drive Debian's chromium through Playwright (never a browser download).
set -e
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian chromium for the browser tests"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "browser tests need /usr/bin/chromium: apt-get install chromium" >&2
  exit 1
fi
