#!/usr/bin/env bash
# Proves that the fixture images behave as the QEMU build host expects, per generation:
#   boot 1  overlay + NoCloud seed (user, key, pinned host key): id, sudo, write a file,
#           `sudo poweroff`, QEMU exits by itself
#   boot 2  same overlay, NEW seed (instance-id, user key, host key): the file persisted, the
#           new key and host key work; then generalize (userdel -r, cloud-init clean, host keys
#           and machine-id removed) and power off
#   boot 3  the overlay flattened into a standalone image (a "capture"), a third seed: the build
#           user is gone, a new machine-id, the customization is still there
# Usage: scripts/check-fixture-images.sh OUT_DIR [gen1|gen2]...
# Everything listens on 127.0.0.1; every QEMU started here is killed on exit.
set -euo pipefail

OUT=${1:?usage: $0 OUT_DIR [gen1|gen2]...}
shift
GENS=("$@")
[ ${#GENS[@]} -gt 0 ] || GENS=(gen1 gen2)
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd

WORK=$(mktemp -d /tmp/check-fixture.XXXXXX)
QEMU_PIDS=()
cleanup() {
  for p in "${QEMU_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${QEMU_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_WORK:-}" ]; then echo "check: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "check: $*"; }
fail() {
  echo "check: FAILED: $*" >&2
  [ -f "${CONSOLE:-}" ] && { echo "--- last console lines ($CONSOLE) ---" >&2; tail -n 25 "$CONSOLE" >&2; }
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# make_seed DIR INSTANCE USER: client key DIR/id, host key DIR/host, seed DIR/seed.img
make_seed() {
  local d=$1 iid=$2 user=$3
  mkdir -p "$d"
  ssh-keygen -q -t ed25519 -N '' -C "client-$iid" -f "$d/id"
  ssh-keygen -q -t ed25519 -N '' -C "host-$iid" -f "$d/host"
  printf 'instance-id: %s\nlocal-hostname: %s\n' "$iid" "$iid" >"$d/meta-data"
  {
    echo '#cloud-config'
    echo 'users:'
    echo "  - name: $user"
    echo '    sudo: ALL=(ALL) NOPASSWD:ALL'
    echo '    shell: /bin/bash'
    echo '    ssh_authorized_keys:'
    echo "      - $(cat "$d/id.pub")"
    echo 'ssh_pwauth: false'
    echo 'disable_root: true'
    echo 'ssh_keys:'
    echo '  ed25519_private: |'
    sed 's/^/    /' "$d/host"
    echo "  ed25519_public: $(cat "$d/host.pub")"
  } >"$d/user-data"
  truncate -s 1M "$d/seed.img"
  mkfs.vfat -n CIDATA "$d/seed.img" >/dev/null
  mcopy -i "$d/seed.img" "$d/meta-data" "$d/user-data" ::/
}

# boot GEN DISK SEEDDIR: starts QEMU in the background, sets PORT, QEMU_PID, CONSOLE, T0.
boot() {
  local gen=$1 disk=$2 seed=$3 fw=()
  PORT=$(free_port)
  CONSOLE=$seed/console.log
  if [ "$gen" = gen2 ]; then
    [ -f "$WORK/$gen-vars.fd" ] || cp "$OVMF_VARS" "$WORK/$gen-vars.fd"
    fw=(-machine "q35,accel=tcg"
      -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
      -drive "if=pflash,format=raw,unit=1,file=$WORK/$gen-vars.fd")
  else
    fw=(-machine "pc,accel=tcg")
  fi
  echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$seed/host.pub")" >"$seed/known_hosts"
  T0=$(now)
  qemu-system-x86_64 "${fw[@]}" -smp 2 -m 512 -nographic -monitor none \
    -serial "file:$CONSOLE" \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:22" -device virtio-net-pci,netdev=n0 \
    -drive "if=virtio,file=$disk,format=qcow2" \
    -drive "if=virtio,file=$seed/seed.img,format=raw,readonly=on" \
    </dev/null >"$seed/qemu.out" 2>&1 &
  QEMU_PID=$!
  QEMU_PIDS+=("$QEMU_PID")
}

# vm SEEDDIR USER CMD...: runs a command over SSH with the seed's key and pinned host key.
vm() {
  local seed=$1 user=$2
  shift 2
  ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$seed/known_hosts" \
    -o HostKeyAlgorithms=ssh-ed25519 -o ConnectTimeout=5 -o LogLevel=ERROR \
    -i "$seed/id" -p "$PORT" "$user@127.0.0.1" "$@"
}

wait_ssh() {
  local seed=$1 user=$2 deadline
  deadline=$(($(date +%s) + BOOT_TIMEOUT))
  until vm "$seed" "$user" true 2>/dev/null; do
    kill -0 "$QEMU_PID" 2>/dev/null || fail "QEMU exited during boot"
    [ "$(date +%s)" -lt "$deadline" ] || fail "no SSH after ${BOOT_TIMEOUT}s"
    sleep 0.2
  done
  say "  SSH ready after $(since "$T0") s (console: $(grep -c . "$CONSOLE") lines)"
}

wait_exit() {
  local t i=0
  t=$(now)
  while kill -0 "$QEMU_PID" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 600 ] || fail "QEMU still running 60 s after poweroff"
    sleep 0.1
  done
  wait "$QEMU_PID" 2>/dev/null || true
  say "  QEMU exited $(since "$t") s after poweroff"
}

check_gen() {
  local gen=$1 img=$OUT/debian-12-$1.qcow2 d=$WORK/$1
  [ -f "$img" ] || fail "missing $img"
  mkdir -p "$d"
  qemu-img create -q -f qcow2 -b "$img" -F qcow2 "$d/overlay.qcow2"

  say "$gen boot 1: fresh overlay, instance one"
  make_seed "$d/one" "$gen-one" builder
  boot "$gen" "$d/overlay.qcow2" "$d/one"
  wait_ssh "$d/one" builder
  [ "$(vm "$d/one" builder id -un)" = builder ] || fail "id -un"
  [ "$(vm "$d/one" builder sudo -n id -u)" = 0 ] || fail "sudo id -u"
  vm "$d/one" builder 'echo persisted | sudo tee /etc/fixture-check >/dev/null && sudo sh -c "sync"'
  vm "$d/one" builder 'echo file-in-home >~/mine'
  local mid1
  mid1=$(vm "$d/one" builder cat /etc/machine-id)
  [ -n "$mid1" ] || fail "empty machine-id"
  vm "$d/one" builder 'test -x /usr/lib/openssh/sftp-server'
  echo "sftp-payload" >"$d/payload"
  sftp -q -b - -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$d/one/known_hosts" \
    -o HostKeyAlgorithms=ssh-ed25519 -i "$d/one/id" -P "$PORT" builder@127.0.0.1 <<<"put $d/payload /tmp/payload" >/dev/null ||
    fail "sftp upload"
  [ "$(vm "$d/one" builder cat /tmp/payload)" = sftp-payload ] || fail "sftp content"
  say "  id, sudo, files, sftp: ok"
  vm "$d/one" builder sudo poweroff 2>/dev/null || true
  wait_exit

  say "$gen boot 2: same overlay, new seed (instance two, new key and host key)"
  make_seed "$d/two" "$gen-two" builder
  boot "$gen" "$d/overlay.qcow2" "$d/two"
  wait_ssh "$d/two" builder
  [ "$(vm "$d/two" builder cat /etc/fixture-check)" = persisted ] || fail "file did not persist"
  [ "$(vm "$d/two" builder cat /etc/machine-id)" = "$mid1" ] || fail "machine-id changed without generalization"
  [ "$(vm "$d/two" builder hostname)" = "$gen-two" ] || fail "hostname"
  say "  persisted file, new key, new host key, hostname: ok"
  # Generalize as an image build would, then power off.
  # The build user deletes itself last: after that, its sudo no longer works.
  vm "$d/two" builder 'sudo sh -c "cloud-init clean --logs --seed && rm -f /etc/ssh/ssh_host_* &&
    truncate -s 0 /etc/machine-id && userdel -r -f builder && sync && poweroff"' 2>/dev/null || true
  wait_exit

  say "$gen boot 3: captured (flattened) image, instance three"
  qemu-img convert -O qcow2 "$d/overlay.qcow2" "$d/capture.qcow2"
  rm -f "$WORK/$gen-vars.fd" # a fresh VM: fresh UEFI variables too
  make_seed "$d/three" "$gen-three" validator
  boot "$gen" "$d/capture.qcow2" "$d/three"
  wait_ssh "$d/three" validator
  [ "$(vm "$d/three" validator cat /etc/fixture-check)" = persisted ] || fail "capture lost the customization"
  vm "$d/three" validator 'test ! -e /home/builder && ! grep -q ^builder: /etc/passwd' || fail "build user survived"
  [ "$(vm "$d/three" validator cat /etc/machine-id)" != "$mid1" ] || fail "machine-id not regenerated"
  T0=$(now)
  vm "$d/three" validator sudo reboot 2>/dev/null || true
  sleep 1 # let the old sshd go away before polling
  wait_ssh "$d/three" validator
  say "  capture: customization kept, build user gone, new machine-id, reboot: ok"
  vm "$d/three" validator sudo poweroff 2>/dev/null || true
  wait_exit
}

for g in "${GENS[@]}"; do check_gen "$g"; done
say "all checks passed (${GENS[*]})"
