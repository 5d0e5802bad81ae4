#!/usr/bin/env bash
# The main job on a fresh machine, with no configuration: installs the host tools, builds the
# Debian 12 fixture images into the embedded default environment's image folder (once; cached
# by recipe), then builds examples/templates/quickstart.json on QEMU and prints the outputs.
set -euo pipefail
cd "$(dirname "$0")/.."

state="${IMAGEBUILDER_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/imagebuilder}"
export IMAGEBUILDER_STATE_DIR="$state"

bash scripts/install-ssh-test-deps.sh
bash scripts/install-test-deps.sh
bash scripts/build-fixture-images.sh "$state/images"
cargo run --release -- build --host qemu examples/templates/quickstart.json "$@"
