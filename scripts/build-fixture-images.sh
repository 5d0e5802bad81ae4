#!/usr/bin/env bash
# Builds the two fixture images the QEMU build host tests boot, from Debian 12 packages only and
# without mounting anything:
#   OUT_DIR/debian-12-gen1.qcow2   MBR, FAT boot partition with syslinux (BIOS), ext4 root
#   OUT_DIR/debian-12-gen2.qcow2   GPT, EFI system partition with systemd-boot (UEFI/OVMF), ext4 root
# Both: Debian's cloud kernel, a busybox initramfs with the virtio modules, busybox init, a small
# NoCloud cloud-init (fixtures/images/rootfs/usr/bin/cloud-init), OpenSSH sshd + sftp-server,
# Debian's sudo and bash. The recipe lives in fixtures/images/.
#
# Cached: the images are rebuilt only when the recipe hash changes (this script, every file under
# fixtures/images/, the versions of the Debian packages used). Needs root (file ownership in the
# image) and the host tools from scripts/install-test-deps.sh.
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
REPO=$(cd "$(dirname "$0")/.." && pwd)
RECIPE=$REPO/fixtures/images
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
GEN1=$OUT/debian-12-gen1.qcow2
GEN2=$OUT/debian-12-gen2.qcow2
DISK_SIZE=$((2 * 1024)) # MiB, like Debian's genericcloud images
BOOT_SIZE=64            # MiB, FAT boot partition (Gen1) / EFI system partition (Gen2)
log() { echo "build-fixture-images: $*" >&2; }

for tool in apt-get dpkg-deb qemu-img mkfs.ext4 mkfs.vfat mcopy mmd syslinux sfdisk readelf cpio gzip flock; do
  command -v "$tool" >/dev/null || { log "missing $tool: run scripts/install-test-deps.sh"; exit 1; }
done
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || { log "missing syslinux mbr.bin: run scripts/install-test-deps.sh"; exit 1; }

# One build at a time per OUT_DIR (tests may start several).
exec 9>"$OUT/.lock"
flock 9

# --- recipe hash -------------------------------------------------------------------------------
mapfile -t ROOTFS_PKGS < <(sed 's/#.*//; /^[[:space:]]*$/d' "$RECIPE/packages.txt")
# shellcheck source=scripts/lib/image-recipe.sh
. "$REPO/scripts/lib/image-recipe.sh"
KPKG=$(cloud_kernel_pkg)
ALL_PKGS=("${ROOTFS_PKGS[@]}" "$KPKG" systemd-boot-efi)
VERSIONS=$(apt-cache show --no-all-versions "${ALL_PKGS[@]}" | awk '/^Package:/ {p=$2} /^Version:/ {print p "=" $2}')
[ "$(echo "$VERSIONS" | wc -l)" -eq "${#ALL_PKGS[@]}" ] || { log "some packages are unknown to apt: ${ALL_PKGS[*]}"; exit 1; }

HASH=$(recipe_hash "$REPO/scripts/build-fixture-images.sh" "$RECIPE" "$VERSIONS")
if [ -f "$OUT/.recipe-$HASH" ] && [ -f "$GEN1" ] && [ -f "$GEN2" ]; then
  log "up to date (recipe $HASH)"
  echo "$GEN1"
  echo "$GEN2"
  exit 0
fi
log "building (recipe $HASH)"
START=$(date +%s)

# Work next to OUT so the final renames are atomic (same filesystem).
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
DEBS=$WORK/debs
mkdir -p "$ROOT" "$DEBS"

# --- packages ----------------------------------------------------------------------------------
log "downloading ${#ALL_PKGS[@]} packages"
mapfile -t PINNED <<<"$VERSIONS" # name=version: exactly the versions hashed above
(cd "$DEBS" && apt-get -qq -o APT::Sandbox::User=root download "${PINNED[@]}") >/dev/null
deb() { ls "$DEBS/$1"_*.deb; }

# Root filesystem skeleton with Debian 12's merged /usr; the packages' files are unpacked into it
# (tar keeps the /bin -> usr/bin symlinks). Docs, manuals, locales and init-system glue are left out.
for d in usr/bin usr/sbin usr/lib usr/lib64 etc/sudoers.d etc/ssh dev proc sys run tmp root home \
  var/lib/cloud var/log var/tmp; do mkdir -p "$ROOT/$d"; done
for d in bin sbin lib lib64; do ln -s "usr/$d" "$ROOT/$d"; done
ln -s ../run "$ROOT/var/run"
for p in "${ROOTFS_PKGS[@]}"; do
  dpkg-deb --fsys-tarfile "$(deb "$p")" | tar -x -C "$ROOT" --keep-directory-symlink \
    --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/locale \
    --exclude=./usr/share/info --exclude=./usr/share/lintian --exclude=./usr/share/bash-completion \
    --exclude=./usr/lib/x86_64-linux-gnu/gconv --exclude=./etc/init.d --exclude=./etc/pam.d \
    --exclude=./lib/systemd --exclude=./usr/lib/systemd --exclude=./etc/ufw --exclude=./etc/default
done
# Parts of those packages whose libraries the image does not carry (security keys, Berkeley DB).
rm -f "$ROOT/usr/lib/openssh/ssh-sk-helper" "$ROOT/usr/lib/x86_64-linux-gnu/security/pam_userdb.so"
# busybox provides every command that no package above ships (init, sh, mount, udhcpc, ...).
"$ROOT/usr/bin/busybox" --list-full | while read -r app; do
  [ -e "$ROOT/$app" ] || [ -L "$ROOT/$app" ] || ln -s /usr/bin/busybox "$ROOT/$app"
done
cp -a "$RECIPE/rootfs/." "$ROOT/"
chown -R 0:0 "$ROOT"
chmod 700 "$ROOT/root"
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
chmod 640 "$ROOT/etc/shadow"
chmod 440 "$ROOT/etc/sudoers"
chmod 750 "$ROOT/etc/sudoers.d"
chmod 4755 "$ROOT/usr/bin/sudo"
: >"$ROOT/etc/machine-id" # empty: the first boot generates one, as systemd does
rm -f "$ROOT"/etc/ssh/ssh_host_* # none in the image: the first boot takes or makes them

# Every ELF file must find its shared libraries inside the image.
log "checking shared libraries"
missing=$(find "$ROOT" -type f -perm /111 -o -type f -name '*.so*' | while read -r f; do
  [ "$(head -c4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
  readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r lib; do
    for dir in usr/lib/x86_64-linux-gnu usr/lib64 usr/libexec/sudo usr/lib; do
      [ -e "$ROOT/$dir/$lib" ] && continue 2
    done
    echo "${f#"$ROOT"} needs $lib"
  done
done)
[ -z "$missing" ] || { log "missing libraries (add their packages to packages.txt):"; echo "$missing" >&2; exit 1; }

# --- kernel and initramfs ----------------------------------------------------------------------
KX=$WORK/kernel
mkdir -p "$KX"
dpkg-deb -x "$(deb "$KPKG")" "$KX"
KVER=${KPKG#linux-image-}
KMODS=$KX/lib/modules/$KVER/kernel
[ -f "$KX/boot/vmlinuz-$KVER" ] || { log "no vmlinuz in $KPKG"; exit 1; }

# Resolve modules.txt plus dependencies (from each module's "depends=" field), deps first.
declare -A MODPATH=() SEEN=()
while read -r f; do
  n=$(basename "$f" .ko)
  MODPATH[${n//-/_}]=$f
done < <(find "$KMODS" -name '*.ko')
ORDER=() LATE=()
add_module() { # $1 = name, $2 = list to append to (ORDER or LATE)
  local n=${1//-/_} d
  [ -n "${SEEN[$n]:-}" ] && return
  SEEN[$n]=1
  [ -n "${MODPATH[$n]:-}" ] || { log "module $1 not found in $KPKG"; exit 1; }
  for d in $(tr '\0' '\n' <"${MODPATH[$n]}" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$d" "$2"; done
  eval "$2+=(\"\$n\")"
}
modules() { sed 's/#.*//; /^[[:space:]]*$/d' "$RECIPE/modules.txt"; }
while read -r m; do add_module "$m" ORDER; done < <(modules | grep -v '^late ')
while read -r _ m; do add_module "$m" LATE; done < <(modules | grep '^late ')

INITRD=$WORK/initrd
mkdir -p "$INITRD/bin" "$INITRD/lib/modules"
cp "$ROOT/usr/bin/busybox" "$INITRD/bin/busybox"
install -m 755 "$RECIPE/initramfs-init" "$INITRD/init"
for n in "${ORDER[@]}"; do
  cp "${MODPATH[$n]}" "$INITRD/lib/modules/$n.ko"
  echo "$n" >>"$INITRD/lib/modules/order"
done
mkdir -p "$ROOT/usr/lib/modules/late"
for n in "${LATE[@]}"; do
  cp "${MODPATH[$n]}" "$ROOT/usr/lib/modules/late/$n.ko"
  echo "$n" >>"$ROOT/usr/lib/modules/late/order"
done
(cd "$INITRD" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$WORK/initrd.img"
cp "$KX/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
log "kernel $KVER, initramfs $(du -k "$WORK/initrd.img" | cut -f1) KiB with ${#ORDER[@]} modules: ${ORDER[*]}; late: ${LATE[*]}"

CMDLINE=$(sed 's/#.*//; /^[[:space:]]*$/d' "$RECIPE/boot/cmdline" | tr '\n' ' ' | sed 's/ *$//')

# --- filesystems -------------------------------------------------------------------------------
ROOT_SIZE=$((DISK_SIZE - BOOT_SIZE - 2)) # 1 MiB before the first partition, 1 MiB for the GPT backup
log "root filesystem (ext4, ${ROOT_SIZE} MiB, $(du -sm "$ROOT" | cut -f1) MiB used)"
# Inode tables and journal are initialised now, not lazily by the guest kernel at first boot
# (which would cost seconds of emulated CPU and write tens of MiB into every overlay).
mkfs.ext4 -q -F -L fixture-root -E lazy_itable_init=0,lazy_journal_init=0 -d "$ROOT" "$WORK/root.img" "${ROOT_SIZE}M" >/dev/null

# A FAT partition image holding kernel, initramfs and the named extra files (SRC:DEST ...).
make_fat() {
  local img=$1 spec
  shift
  truncate -s "${BOOT_SIZE}M" "$img"
  mkfs.vfat -F 16 -n "$(basename "$img" .img | tr '[:lower:]' '[:upper:]')" "$img" >/dev/null
  mcopy -i "$img" "$WORK/vmlinuz" ::/vmlinuz
  mcopy -i "$img" "$WORK/initrd.img" ::/initrd.img
  for spec in "$@"; do
    local dir="" part
    for part in $(dirname "${spec#*:}" | tr '/' ' '); do # mmd has no -p
      dir=$dir/$part
      mmd -i "$img" "::$dir" 2>/dev/null || true
    done
    mcopy -i "$img" "${spec%%:*}" "::${spec#*:}"
  done
}
subst() { sed "s|@CMDLINE@|$CMDLINE|" "$1" >"$2"; }

# A raw disk: partition table from sfdisk (on a plain file), then the partition images at their
# offsets. $1 = disk, $2 = sfdisk label (dos/gpt), $3/$4 = boot partition type / image.
make_disk() {
  local disk=$1 label=$2 boottype=$3 bootimg=$4 roottype=$5 extra=$6
  truncate -s "${DISK_SIZE}M" "$disk"
  sfdisk -q "$disk" <<EOF
label: $label
start=1MiB, size=${BOOT_SIZE}MiB, type=$boottype $extra
start=$((1 + BOOT_SIZE))MiB, size=${ROOT_SIZE}MiB, type=$roottype
EOF
  dd if="$bootimg" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$WORK/root.img" of="$disk" bs=1M seek=$((1 + BOOT_SIZE)) conv=notrunc,sparse status=none
}

# Gen1: MBR boot code from syslinux, bootable FAT16 partition with syslinux (installed with
# mtools, no mount), ext4 root.
log "gen1: MBR + syslinux"
subst "$RECIPE/boot/syslinux.cfg" "$WORK/syslinux.cfg"
make_fat "$WORK/boot.img" "$WORK/syslinux.cfg:/syslinux.cfg"
syslinux --install "$WORK/boot.img"
make_disk "$WORK/gen1.raw" dos e "$WORK/boot.img" 83 ", bootable"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$WORK/gen1.raw" bs=440 count=1 conv=notrunc status=none

# Gen2: GPT, EFI system partition with systemd-boot as the removable-media path
# (\EFI\BOOT\BOOTX64.EFI, found by OVMF without any boot variable), ext4 root typed as
# "Linux root (x86-64)".
log "gen2: GPT + ESP + systemd-boot"
SDBOOT=$WORK/sdboot
mkdir -p "$SDBOOT"
dpkg-deb -x "$(deb systemd-boot-efi)" "$SDBOOT"
EFI=$SDBOOT/usr/lib/systemd/boot/efi/systemd-bootx64.efi
subst "$RECIPE/boot/fixture.conf" "$WORK/fixture.conf"
make_fat "$WORK/esp.img" "$EFI:/EFI/BOOT/BOOTX64.EFI" "$EFI:/EFI/systemd/systemd-bootx64.efi" \
  "$RECIPE/boot/loader.conf:/loader/loader.conf" "$WORK/fixture.conf:/loader/entries/fixture.conf"
make_disk "$WORK/gen2.raw" gpt C12A7328-F81F-11D2-BA4B-00A0C93EC93B "$WORK/esp.img" \
  4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 ""

# --- images ------------------------------------------------------------------------------------
qemu-img convert -f raw -O qcow2 "$WORK/gen1.raw" "$WORK/debian-12-gen1.qcow2"
qemu-img convert -f raw -O qcow2 "$WORK/gen2.raw" "$WORK/debian-12-gen2.qcow2"
rm -f "$OUT"/.recipe-*
mv -f "$WORK/debian-12-gen1.qcow2" "$GEN1"
mv -f "$WORK/debian-12-gen2.qcow2" "$GEN2"
echo "$VERSIONS" >"$OUT/.recipe-$HASH"
log "done in $(($(date +%s) - START)) s (recipe $HASH)"
echo "$GEN1"
echo "$GEN2"
