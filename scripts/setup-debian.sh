#!/usr/bin/env bash
# Installs kinfer's build dependencies from Debian 12 packages (run as root or with sudo available).
set -euo pipefail
pkgs=(build-essential cmake ninja-build doctest-dev libxsimd-dev libbenchmark-dev libedit-dev nlohmann-json3-dev clang libclang-rt-14-dev python3)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
echo "dependencies present: ${pkgs[*]}"
