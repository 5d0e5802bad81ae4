#!/usr/bin/env bash
# The benchmarks of issue #7, one command from a fresh clone (as root on Debian 12):
#   bash scripts/bench.sh            # the full comparison (about 20-25 min on 2 cores)
#   bash scripts/bench.sh --quick    # a smoke run: fewer repetitions, figures not to quote
#   bash scripts/bench.sh --only convert,replicate --reps 7
# Installs the host tools, Packer (Debian's 1.6.6, which still has the QEMU builder) and the
# fixture image, then runs the harness (`cargo bench --bench compare`), which prints the
# tables of docs/benchmarks.md. The criterion micro benchmarks are separate:
#   cargo bench --bench micro
# Scratch data goes to $IB_BENCH_DATA (default /tmp/imagebuilder-bench, about 6 GiB); the
# inputs of the conversion section are kept there between runs, delete it when done.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-ssh-test-deps.sh
bash scripts/install-test-deps.sh
if ! command -v packer >/dev/null 2>&1; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends packer
fi

fixtures="${IB_BENCH_FIXTURES:-$HOME/.cache/imagebuilder/fixture-images}"
bash scripts/build-fixture-images.sh "$fixtures" >/dev/null
export IB_BENCH_FIXTURE="$fixtures/debian-12-gen1.qcow2"

cargo bench --bench compare -- "$@"
