#!/usr/bin/env bash
# Runs each libFuzzer target (fuzz/fuzz_targets) for SECONDS (default 60), starting from a
# corpus seeded with the inputs our tests use. A crash fails the script and leaves its
# input in fuzz/artifacts/TARGET/.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Targets: template, arm_expression, qcow2_reader, vhd_reader, seed_user_data.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(template arm_expression qcow2_reader vhd_reader seed_user_data)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes -Z flags (sanitizer, coverage); this machine's one toolchain is stable.
export RUSTC_BOOTSTRAP=1

corpus_root=${IMAGEBUILDER_FUZZ_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imagebuilder/fuzz-corpus}
seed() {
  local target=$1 dir=$corpus_root/$1
  mkdir -p "$dir"
  case $target in
    template)
      cp examples/templates/*.json "$dir/"
      find tests/fixtures/aib-samples -name '*.json' -exec cp {} "$dir/" \;
      ;;
    arm_expression)
      local i=0
      for e in "concat('a', parameters('p'))" "format('{0}-{1}', 1, 'x')" \
               "if(equals(1, 1), 'y', 'n')" "toLower(substring(parameters('p'), 0, 2))" \
               "split('a,b', ',')[1]" "length(createArray(1, 2, 3))" \
               "json('{\"a\": [1, 2]}').a[0]" "uniqueString(resourceGroup().id)"; do
        printf '%s' "$e" > "$dir/seed-$i"; i=$((i + 1))
      done
      ;;
    seed_user_data)
      # Five NUL-separated inputs: instance id, user, client key, host private key, host key.
      local tmp
      tmp=$(mktemp -d)
      ssh-keygen -q -t ed25519 -N '' -C imagebuilder-host -f "$tmp/host"
      ssh-keygen -q -t ed25519 -N '' -C imagebuilder-build-user -f "$tmp/client"
      { printf 'qemu-test-build\0imagebuilder\0'; cat "$tmp/client.pub"; printf '\0'
        cat "$tmp/host"; printf '\0'; cat "$tmp/host.pub"; } > "$dir/real-keys"
      printf 'id\nlocal-hostname: evil\0builder\0ssh-ed25519 A c\0k\0ssh-ed25519 B h' > "$dir/line-in-id"
      printf 'id\0null\0ssh-ed25519 A "c\\"\0-----BEGIN-----\r\nabc\n\0ssh-ed25519 B h: #x' > "$dir/quotes"
      rm -rf "$tmp"
      ;;
    qcow2_reader | vhd_reader)
      local tmp
      tmp=$(mktemp -d)
      head -c 65536 /dev/urandom > "$tmp/data"
      qemu-img create -q -f raw "$tmp/disk.raw" 1M
      dd if="$tmp/data" of="$tmp/disk.raw" bs=64k seek=3 conv=notrunc status=none
      if [ "$target" = qcow2_reader ]; then
        qemu-img convert -q -f raw -O qcow2 -o cluster_size=4096 "$tmp/disk.raw" "$dir/plain.qcow2"
        qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096 "$tmp/disk.raw" "$dir/compressed.qcow2"
        qemu-img convert -q -f raw -O qcow2 -o compat=0.10,cluster_size=512 "$tmp/disk.raw" "$dir/v2.qcow2"
      else
        qemu-img convert -q -f raw -O vpc -o subformat=fixed "$tmp/disk.raw" "$dir/fixed.vhd"
        qemu-img convert -q -f raw -O vpc -o subformat=dynamic "$tmp/disk.raw" "$dir/dynamic.vhd"
      fi
      rm -rf "$tmp"
      ;;
  esac
}

cd fuzz
cargo fuzz build -O 2>&1 | tail -n 2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  (cd .. && seed "$target")
  printf '\n==> fuzzing %s for %ss\n' "$target" "$seconds"
  if ! cargo fuzz run -O "$target" "$corpus_root/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' "$log" || tail -n 3 "$log"
done
