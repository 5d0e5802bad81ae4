#!/usr/bin/env bash
# Installs the Debian packages that the fixture-image builds (scripts/build-fixture-images.sh,
# scripts/build-stock-image.sh) and the QEMU tests need on the HOST. Idempotent and fast when everything is present:
# `dpkg -s` is checked first and apt runs only for what is missing.
#
# Packages that end up INSIDE the guest images (kernel, busybox, OpenSSH, sudo, bash and
# their libraries) are not installed here: the build script fetches them with
# `apt-get download` and unpacks them with `dpkg-deb -x`, so no kernel postinst/initramfs
# hook and no sshd start-up runs on the host.
set -euo pipefail

# Host tools, one reason each:
#   qemu-system-x86 qemu-utils  VMs and qemu-img; ONE apt command, because installing
#                               qemu-system-x86 alone removes a newer qemu-utils (machine notes)
#   ovmf                        UEFI firmware for Gen2 (/usr/share/OVMF/OVMF_CODE_4M.fd)
#   syslinux syslinux-common extlinux  BIOS boot (syslinux --offset, mbr.bin)
#   mtools dosfstools           FAT boot/ESP partitions and CIDATA seeds without mounting
#   e2fsprogs                   mkfs.ext4 -d for the root filesystem
#   fdisk                       sfdisk on plain image files
#   xorriso                     iso9660 seeds (optional flavour of NoCloud)
#   cpio gzip zstd              initramfs packing
#   binutils                    readelf: the build checks every guest binary finds its libraries
#   util-linux                  flock (one build per output directory); unshare (the build
#                               VM's own network namespace)
#   slirp4netns                 that namespace's way out, with no way to the host's loopback
#   iproute2                    ip: the network test's namespace and veth pair
#   openssh-client              ssh/ssh-keygen for the checks and the host's key pairs
#   mmdebstrap                  the stock Debian image's root (scripts/build-stock-image.sh),
#                               installed with its maintainer scripts in a chroot, not the host
PKGS=(
  qemu-system-x86 qemu-utils ovmf
  syslinux syslinux-common extlinux
  mtools dosfstools e2fsprogs fdisk xorriso
  cpio gzip zstd binutils util-linux openssh-client
  mmdebstrap slirp4netns iproute2
)

missing=()
for p in "${PKGS[@]}"; do
  # "install ok installed" is the only state that means usable.
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
# qemu-img can vanish if qemu-utils was replaced: treat that as missing too.
if ! command -v qemu-img >/dev/null 2>&1; then
  missing+=(qemu-utils)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq

# If either qemu package is missing, install both together at the SAME version (see above).
# The machines may carry a newer qemu-utils from backports that "Breaks" Debian 12's
# qemu-system-common; apt never downgrades on its own, so pin qemu-utils to the version of
# qemu-system-x86 that apt would install and allow the downgrade.
want=()
qemu=0
for p in "${missing[@]}"; do
  case "$p" in
    qemu-system-x86 | qemu-utils) qemu=1 ;;
    *) want+=("$p") ;;
  esac
done
if [ "$qemu" = 1 ]; then
  v=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
  want+=("qemu-system-x86=$v" "qemu-utils=$v")
fi

echo "install-test-deps: installing: ${want[*]}"
apt-get install -y -qq --no-install-recommends --allow-downgrades \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${want[@]}"
command -v qemu-img >/dev/null && command -v qemu-system-x86_64 >/dev/null
echo "install-test-deps: done"
