#!/usr/bin/env bash
# Installs kinfer's build dependencies from Debian 12 packages (run as root or with sudo available).
set -euo pipefail
pkgs=(build-essential cmake ninja-build doctest-dev libxsimd-dev libbenchmark-dev libedit-dev clang libclang-rt-14-dev python3 tmux
      libcpp-httplib-dev nlohmann-json3-dev chromium nodejs curl)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# npm comes with some Node.js builds (NodeSource's) and is a package of its own in Debian's.
if ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm
fi
echo "dependencies present: ${pkgs[*]}"
