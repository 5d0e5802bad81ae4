#!/usr/bin/env bash
# Builds a stock-style Debian 12 cloud image, OUT_DIR/debian-12-stock-gen1.qcow2, from Debian's
# packages and without mounting a disk image: mmdebstrap installs systemd, the real cloud-init,
# OpenSSH, sudo and the cloud kernel (with its initramfs-tools initrd) into a directory, which
# becomes the ext4 root with `mkfs.ext4 -d`; BIOS boot is syslinux on a FAT partition written with
# mtools. Networking: cloud-init's fallback config (DHCP on the first NIC), rendered for
# systemd-networkd, with a networkd DHCP fallback of its own. The recipe lives in fixtures/stock/.
#
# Cached like the fixture images: rebuilt only when the recipe hash changes (this script, every
# file under fixtures/stock/, the versions of the named packages); one build per OUT_DIR (flock);
# the image appears under its final name only when complete. Needs root (mmdebstrap --mode=root)
# and the host tools from scripts/install-test-deps.sh.
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
REPO=$(cd "$(dirname "$0")/.." && pwd)
RECIPE=$REPO/fixtures/stock
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
GEN1=$OUT/debian-12-stock-gen1.qcow2
DISK_SIZE=$((2 * 1024)) # MiB, like Debian's genericcloud images
BOOT_SIZE=128           # MiB, FAT boot partition: kernel + a MODULES=most initrd
ROOT_LABEL=stock-root   # named by boot/syslinux.cfg and rootfs/etc/fstab
log() { echo "build-stock-image: $*" >&2; }

for tool in mmdebstrap apt-cache qemu-img mkfs.ext4 mkfs.vfat mcopy syslinux sfdisk flock findmnt; do
  command -v "$tool" >/dev/null || { log "missing $tool: run scripts/install-test-deps.sh"; exit 1; }
done
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || { log "missing syslinux mbr.bin: run scripts/install-test-deps.sh"; exit 1; }
[ "$(id -u)" = 0 ] || { log "needs root (mmdebstrap --mode=root, file ownership in the image)"; exit 1; }

# One build at a time per OUT_DIR (tests and scripts may start several).
exec 9>"$OUT/.stock.lock"
flock 9

# --- recipe hash -------------------------------------------------------------------------------
mapfile -t PKGS < <(sed 's/#.*//; /^[[:space:]]*$/d' "$RECIPE/packages.txt")
# shellcheck source=scripts/lib/image-recipe.sh
. "$REPO/scripts/lib/image-recipe.sh"
KPKG=$(cloud_kernel_pkg)
# The named packages' versions (not their whole closure): a new kernel, cloud-init, OpenSSH or
# systemd in the archive rebuilds the image.
VERSIONS=$(apt-cache show --no-all-versions "${PKGS[@]}" "$KPKG" | awk '/^Package:/ {p=$2} /^Version:/ {print p "=" $2}')
[ "$(echo "$VERSIONS" | wc -l)" -eq $((${#PKGS[@]} + 1)) ] || { log "some packages are unknown to apt: ${PKGS[*]}"; exit 1; }

HASH=$(recipe_hash "$REPO/scripts/build-stock-image.sh" "$RECIPE" "$VERSIONS")
if [ -f "$OUT/.stock-recipe-$HASH" ] && [ -f "$GEN1" ]; then
  log "up to date (recipe $HASH)"
  echo "$GEN1"
  exit 0
fi
log "building (recipe $HASH)"
START=$(date +%s)

# Work next to OUT so the final rename is atomic (same filesystem). mmdebstrap mounts /proc and
# /sys inside ROOT while it runs: the clean-up never crosses into a mount left by a killed run.
WORK=$(mktemp -d "$OUT/.stock-build.XXXXXX")
trap 'rm -rf --one-file-system "$WORK"' EXIT
ROOT=$WORK/root

# --- root filesystem ---------------------------------------------------------------------------
# Docs, manuals, locales and info pages are never unpacked (as `dpkg --path-exclude`).
EXCLUDES=()
for p in doc man locale info lintian; do
  EXCLUDES+=("--dpkgopt=path-exclude=/usr/share/$p/*")
done
EXCLUDES+=(--dpkgopt=path-include=/usr/share/doc/*/copyright --dpkgopt=path-include=/usr/share/locale/locale.alias)
log "mmdebstrap: ${PKGS[*]}"
mmdebstrap --mode=root --variant=apt --format=directory -q \
  --include="$(IFS=,; echo "${PKGS[*]}")" \
  "${EXCLUDES[@]}" --dpkgopt=force-unsafe-io \
  --essential-hook="sync-in '$RECIPE/rootfs' /" \
  --customize-hook='systemctl --root="$1" enable systemd-networkd.service' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook=': >"$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"' \
  --customize-hook='echo debian >"$1/etc/hostname"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/tmp/*' \
  bookworm "$ROOT" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"
if findmnt -rn -o TARGET | grep -q "^$ROOT"; then
  log "mmdebstrap left mounts under $ROOT"
  exit 1
fi
KVER=${KPKG#linux-image-}
for f in "$ROOT/boot/vmlinuz-$KVER" "$ROOT/boot/initrd.img-$KVER"; do
  [ -f "$f" ] || { log "no $(basename "$f") in the root filesystem"; exit 1; }
done

# --- filesystems -------------------------------------------------------------------------------
ROOT_SIZE=$((DISK_SIZE - BOOT_SIZE - 1)) # 1 MiB before the first partition
log "root filesystem (ext4, ${ROOT_SIZE} MiB, $(du -sm "$ROOT" | cut -f1) MiB used)"
# Inode tables and journal are initialised now, not lazily by the guest kernel at first boot.
mkfs.ext4 -q -F -L "$ROOT_LABEL" -E lazy_itable_init=0,lazy_journal_init=0 -d "$ROOT" \
  "$WORK/root.img" "${ROOT_SIZE}M" >/dev/null

# FAT16 boot partition: syslinux (installed with mtools, no mount), kernel, initrd, config.
BOOT=$WORK/boot.img
truncate -s "${BOOT_SIZE}M" "$BOOT"
mkfs.vfat -F 16 -n BOOT "$BOOT" >/dev/null
mcopy -i "$BOOT" "$ROOT/boot/vmlinuz-$KVER" ::/vmlinuz
mcopy -i "$BOOT" "$ROOT/boot/initrd.img-$KVER" ::/initrd.img
mcopy -i "$BOOT" "$RECIPE/boot/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$BOOT"
log "kernel $KVER, initrd $(du -k "$ROOT/boot/initrd.img-$KVER" | cut -f1) KiB"

# MBR disk: syslinux's boot code, bootable FAT partition 1, ext4 root partition 2 (the largest,
# as in stock images).
RAW=$WORK/gen1.raw
truncate -s "${DISK_SIZE}M" "$RAW"
sfdisk -q "$RAW" <<EOF
label: dos
start=1MiB, size=${BOOT_SIZE}MiB, type=e, bootable
start=$((1 + BOOT_SIZE))MiB, size=${ROOT_SIZE}MiB, type=83
EOF
dd if="$BOOT" of="$RAW" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$RAW" bs=1M seek=$((1 + BOOT_SIZE)) conv=notrunc,sparse status=none
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$RAW" bs=440 count=1 conv=notrunc status=none

# --- image -------------------------------------------------------------------------------------
qemu-img convert -f raw -O qcow2 "$RAW" "$WORK/debian-12-stock-gen1.qcow2"
rm -f "$OUT"/.stock-recipe-*
mv -f "$WORK/debian-12-stock-gen1.qcow2" "$GEN1"
echo "$VERSIONS" >"$OUT/.stock-recipe-$HASH"
log "done in $(($(date +%s) - START)) s (recipe $HASH, $(du -m "$GEN1" | cut -f1) MiB)"
echo "$GEN1"
