#!/usr/bin/env bash
# A real libvirt daemon for the libvirt host's tests, on a machine without systemd.
#
#   libvirt-daemon.sh install       Debian packages: the daemon with its QEMU driver, virsh,
#                                   and libvirt-dev (pkg-config libvirt) to build `virt`
#   libvirt-daemon.sh start STATE   install, then start virtlogd and libvirtd as root unless a
#                                   daemon already answers on qemu:///system; records what it
#                                   started in STATE/libvirt-started
#   libvirt-daemon.sh stop STATE    stops only what `start` started
#
# Sockets: /run/libvirt/libvirt-sock (qemu:///system), /run/libvirt/virtlogd-sock.
# QEMU runs domains as the user and group libvirt-qemu (also in group kvm); the QEMU driver
# refuses to start without them, and the package that would make them
# (libvirt-daemon-system) expects systemd, so they are made here. Needs root (or sudo).
# Idempotent.
set -euo pipefail

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
URI=qemu:///system

install() {
    local need=()
    have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
    for p in libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config; do
        have_pkg "$p" || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        echo "libvirt-daemon: installing: ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        "${as_root[@]}" apt-get update -qq
        "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${need[@]}"
    fi
    getent group kvm >/dev/null || "${as_root[@]}" groupadd --system kvm
    getent group libvirt-qemu >/dev/null || "${as_root[@]}" groupadd --system libvirt-qemu
    getent passwd libvirt-qemu >/dev/null ||
        "${as_root[@]}" useradd --system --gid libvirt-qemu --groups kvm \
            --home-dir /var/lib/libvirt --no-create-home --shell /usr/sbin/nologin libvirt-qemu
    "${as_root[@]}" mkdir -p /var/log/libvirt/qemu /run/libvirt /var/lib/libvirt/images
    # What Debian's udev rule does on a standard system: /dev/kvm root:kvm 0660. Without it
    # QEMU's user cannot open /dev/kvm while libvirt's capability probe (as root) finds KVM,
    # and libvirt throws its capability cache away and probes QEMU again on every domain
    # start (about 35 s each here). Domains still use TCG (domain type qemu): KVM hangs on
    # these machines.
    if [ -e /dev/kvm ]; then
        "${as_root[@]}" chgrp kvm /dev/kvm
        "${as_root[@]}" chmod 0660 /dev/kvm
    fi
}

answers() {
    timeout 10 virsh -q -c "$URI" version >/dev/null 2>&1
}

start() {
    local state=$1
    mkdir -p "$state"
    install
    if answers; then
        echo "libvirt-daemon: a daemon already answers on $URI"
        return 0
    fi
    : >"$state/libvirt-started"
    if ! pgrep -x virtlogd >/dev/null; then
        "${as_root[@]}" virtlogd -d -p /run/imagebuilder-virtlogd.pid
        echo virtlogd >>"$state/libvirt-started"
    fi
    "${as_root[@]}" libvirtd -d -p /run/imagebuilder-libvirtd.pid
    echo libvirtd >>"$state/libvirt-started"
    for _ in $(seq 1 60); do
        if answers; then
            echo "libvirt-daemon: libvirtd answers on $URI ($(virsh -q -c "$URI" version | head -1))"
            return 0
        fi
        sleep 0.5
    done
    echo "libvirt-daemon: libvirtd did not answer on $URI within 30 s" >&2
    return 1
}

stop() {
    local state=$1 name pid
    [ -f "$state/libvirt-started" ] || return 0
    while read -r name; do
        pid=$(cat "/run/imagebuilder-$name.pid" 2>/dev/null || true)
        if [ -n "$pid" ]; then
            "${as_root[@]}" kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
    done <"$state/libvirt-started"
    rm -f "$state/libvirt-started"
}

case "${1:-}" in
install) install ;;
start) start "${2:?usage: libvirt-daemon.sh start STATE_DIR}" ;;
stop) stop "${2:?usage: libvirt-daemon.sh stop STATE_DIR}" ;;
*)
    echo "usage: libvirt-daemon.sh install | start STATE_DIR | stop STATE_DIR" >&2
    exit 2
    ;;
esac
