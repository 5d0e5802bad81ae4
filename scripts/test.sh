#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh machine: installs what the tests
# need, then formatting, lints, docs, the tests with all features and without defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages for the SSH tests (OpenSSL headers for libssh2, an OpenSSH server)"
bash scripts/install-ssh-test-deps.sh

step "system packages for the QEMU tests, and the fixture images (cached by recipe)"
bash scripts/install-test-deps.sh
export IMAGEBUILDER_FIXTURE_IMAGES="${IMAGEBUILDER_FIXTURE_IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/imagebuilder/fixture-images}"
bash scripts/build-fixture-images.sh "$IMAGEBUILDER_FIXTURE_IMAGES"

step "the stock Debian 12 image for the stock-image build test (mmdebstrap; cached by recipe)"
export IMAGEBUILDER_STOCK_IMAGES="${IMAGEBUILDER_STOCK_IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/imagebuilder/stock-images}"
bash scripts/build-stock-image.sh "$IMAGEBUILDER_STOCK_IMAGES"

step "storage servers for the upload tests (Azurite, moto; installed into the cache)"
storage_state=$(mktemp -d)
trap 'bash scripts/libvirt-daemon.sh stop "$storage_state"; bash scripts/storage-servers.sh stop "$storage_state"; rm -rf "$storage_state"' EXIT
bash scripts/storage-servers.sh start "$storage_state"
# Exports IMAGEBUILDER_TEST_AZURITE / IMAGEBUILDER_TEST_S3 and the stores' AZURE_* / AWS_*.
# shellcheck source=/dev/null
. "$storage_state/env"

step "libvirt daemon for the libvirt host's tests (libvirt-dev to build; libvirtd, virtlogd)"
bash scripts/libvirt-daemon.sh start "$storage_state"
export IMAGEBUILDER_TEST_LIBVIRT_URI=qemu:///system

step "toolchain"
cargo --version
rustup component list --installed 2>/dev/null | grep -E '^(rustfmt|clippy)' || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps

step "build without default features"
cargo build --workspace --no-default-features

step "cargo test (all features)"
cargo test --workspace --all-features

step "fuzz targets: build with cargo-fuzz and run each briefly (longer runs: bash scripts/fuzz.sh SECONDS)"
bash scripts/fuzz.sh 15
