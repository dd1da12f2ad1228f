#!/usr/bin/env bash
# Install the Debian packages the test suite uses as validators and servers:
# ffprobe (ffmpeg), mkvmerge/mkvinfo (mkvtoolnix), mosquitto (MQTT broker), ip (iproute2),
# chromium (the dashboard page test).
# The runtime itself needs none of them. Skips everything already present.
set -euo pipefail
need=()
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v mkvmerge >/dev/null 2>&1 || need+=(mkvtoolnix)
{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || need+=(mosquitto)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
{ command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
echo "installing system packages: ${need[*]}" >&2
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"
