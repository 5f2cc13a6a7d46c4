#!/usr/bin/env bash
# Installs the system libraries the GUI tests need (virtual X server, Mesa software GL, the xcb
# libraries of Qt 6) when they are missing. Does nothing when all are present; needs root for apt.
set -euo pipefail
pkgs=(xvfb xauth libgl1-mesa-dri libglx-mesa0 libgl1 libegl1 libxkbcommon-x11-0 libxcb-icccm4
      libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
      libxcb-xkb1 libxcb-cursor0 libxrender1 libxi6 libfontconfig1 libdbus-1-3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: missing system packages (${missing[*]}); GUI tests may be skipped. Install them as root." >&2
  exit 0
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
