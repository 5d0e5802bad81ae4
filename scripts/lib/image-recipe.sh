# Sourced by the image recipes (build-fixture-images.sh, build-stock-image.sh): the cloud
# kernel's versioned package, and the hash an image is cached by. Needs a `log` function.

# Empty when apt has no lists (apt-cache fails: not fatal here). awk reads to the end:
# exiting early would kill apt-cache with SIGPIPE, which pipefail turns into a silent exit.
cloud_kernel_pkg_now() {
  { apt-cache depends linux-image-cloud-amd64 2>/dev/null || true; } |
    awk '/Depends: linux-image-[0-9]/ && !k {k = $2} END {print k}'
}

# Prints the package (e.g. linux-image-6.1.0-28-cloud-amd64), or fails saying why.
cloud_kernel_pkg() {
  local pkg
  pkg=$(cloud_kernel_pkg_now)
  if [ -z "$pkg" ]; then
    log "apt lists missing: apt-get update"
    apt-get update -qq
    pkg=$(cloud_kernel_pkg_now)
  fi
  [ -n "$pkg" ] || { log "cannot resolve linux-image-cloud-amd64"; return 1; }
  echo "$pkg"
}

# Prints the 16-hex-digit hash of a recipe: the script SCRIPT, this file, every file under
# RECIPE_DIR (name, mode, contents or link target) and VERSIONS (the packages' versions).
recipe_hash() {
  local script=$1 recipe_dir=$2 versions=$3
  {
    cat "$script" "${BASH_SOURCE[0]}"
    (cd "$recipe_dir" && find . \( -type f -o -type l \) -print | LC_ALL=C sort | while read -r f; do
      printf '%s %s ' "$f" "$(stat -c %a "$f")"
      if [ -L "$f" ]; then readlink "$f"; else sha256sum <"$f"; fi
    done)
    echo "$versions"
  } | sha256sum | cut -c1-16
}
