#!/usr/bin/env bash
# Create the project virtualenv. On Debian, python3 ships without venv/ensurepip until
# python3-venv is installed, so install it when the first attempt fails.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
if "$python" -m venv "$venv" 2>/dev/null; then
    exit 0
fi
rm -rf "$venv"
echo "python venv module missing; installing python3-venv" >&2
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
minor=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-venv "python${minor}-venv" \
    || DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-venv
"$python" -m venv "$venv"
