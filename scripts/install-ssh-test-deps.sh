#!/usr/bin/env bash
# Installs what the `ssh` feature of imagebuilder-drivers needs to build and test:
# - build: OpenSSL headers and pkg-config (libssh2-sys links OpenSSL; libssh2 itself is
#   built from the crate's bundled source);
# - tests: an OpenSSH server (sshd, ssh-keygen) and sudo (for elevated commands).
# Idempotent: installs only what is missing. Needs root (or sudo) and Debian's packages.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
have_pkg libssl-dev || need+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v sudo >/dev/null 2>&1 || need+=(sudo)

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)

if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# sshd refuses to start without its privilege-separation directory (the tests create it
# too; /run is often a fresh tmpfs).
"${as_root[@]}" mkdir -p /run/sshd
