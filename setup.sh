#!/usr/bin/env bash
# Installs what building and testing Switchboard needs on Debian, when it is missing.
# Idempotent: a machine that has everything installs nothing.
set -euo pipefail

packages=(pkg-config liblua5.4-dev libjemalloc-dev libnats-dev nats-server python3-junitparser python3-jsonschema python3-yaml)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
command -v swift >/dev/null || { echo "setup: the Swift toolchain is not on PATH" >&2; exit 1; }
