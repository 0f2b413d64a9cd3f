#!/usr/bin/env bash
# Install the Debian packages the build and the tests need, only when missing.
set -euo pipefail
PKGS=(cmake make gcc clang llvm libcmocka-dev libbpf-dev bpftool libelf-dev libdw-dev
      zlib1g-dev libncurses-dev libsqlite3-dev sqlite3 systemtap-sdt-dev tmux libclang-rt-14-dev bpftrace python3)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "spindle: installing ${missing[*]}" >&2
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
