#!/usr/bin/env bash
# Real storage servers for the upload tests of imagebuilder-dist: Azurite (Azure Blob, with
# page blobs) and moto (S3). Both listen on 127.0.0.1 only, on free ports, with their data in
# the state directory.
#
#   storage-servers.sh install          install both into ~/.cache/imagebuilder (idempotent)
#   storage-servers.sh start STATE_DIR  install, start, wait until both answer, create the
#                                       test container and bucket, write STATE_DIR/env
#   storage-servers.sh env STATE_DIR    print the environment (export lines) for the tests
#   storage-servers.sh stop STATE_DIR   stop both (only the processes this script started)
#
# STATE_DIR/env sets the variables object_store and imagebuilder read (AZURE_STORAGE_*,
# AZURITE_BLOB_STORAGE_URL, AWS_*) plus IMAGEBUILDER_TEST_AZURITE and IMAGEBUILDER_TEST_S3,
# the container and bucket URLs the tests write under. The credentials are the public,
# well-known Azurite development account and moto's dummy keys: nothing secret.
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/imagebuilder"
AZURITE_DIR="$CACHE/azurite"
MOTO_VENV="$CACHE/moto-venv"
# Azurite's well-known development account (documented by Microsoft for the emulator).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
CONTAINER=imagebuilder-test
BUCKET=imagebuilder-test
# Python 3.11 from Debian; the moto venv must not depend on a pyenv shim that may be absent.
PYTHON="${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}"

log() { printf 'storage-servers: %s\n' "$*" >&2; }

install() {
  if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
    log "installing azurite@3 into $AZURITE_DIR"
    mkdir -p "$AZURITE_DIR"
    npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --silent azurite@3 >&2
  fi
  if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
    log "installing moto[server] into $MOTO_VENV"
    if ! "$PYTHON" -m venv "$MOTO_VENV" 2>/dev/null; then
      # Debian splits venv (ensurepip) into its own package.
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >&2
      rm -rf "$MOTO_VENV"
      "$PYTHON" -m venv "$MOTO_VENV"
    fi
    "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]" >&2
  fi
}

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for NAME PID URL: until URL answers with any HTTP status (at most 60 s).
wait_for() {
  local name=$1 pid=$2 url=$3
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during start-up; its log:"
      cat "$STATE/$name.log" >&2
      return 1
    fi
    if "$PYTHON" - "$url" <<'EOF' 2>/dev/null; then
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass  # any HTTP answer means the server is up
EOF
      return 0
    fi
    sleep 0.1
  done
  log "$name did not answer at $url within 60 s"
  return 1
}

# Creates the test container with a Shared Key request signed here, independently of the
# Rust signer under test.
create_container() {
  "$PYTHON" - "$1" "$AZ_ACCOUNT" "$AZ_KEY" "$CONTAINER" <<'EOF'
import base64, hashlib, hmac, sys, urllib.request, urllib.error
from email.utils import formatdate
endpoint, account, key, container = sys.argv[1:]
date = formatdate(usegmt=True)
version = "2021-08-06"
to_sign = "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n" \
    + f"/{account}/{account}/{container}\nrestype:container"
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"{endpoint}/{account}/{container}?restype=container", method="PUT",
    headers={"x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}"})
try:
    urllib.request.urlopen(req, timeout=10)
except urllib.error.HTTPError as e:
    if e.code != 409:  # already exists
        raise
EOF
}

create_bucket() {
  "$PYTHON" - "$1" "$BUCKET" <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(urllib.request.Request(f"{sys.argv[1]}/{sys.argv[2]}", method="PUT"), timeout=10)
except urllib.error.HTTPError as e:
    if e.code != 409:
        raise
EOF
}

start() {
  install
  mkdir -p "$STATE/azurite-data"
  local az_port s3_port
  az_port=$(free_port)
  # setsid: each server leads its own process group, so stop can end it with its children.
  setsid "$AZURITE_DIR/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$az_port" \
    --location "$STATE/azurite-data" --skipApiVersionCheck --silent \
    >"$STATE/azurite.log" 2>&1 </dev/null &
  echo $! >"$STATE/azurite.pid"
  s3_port=$(free_port)
  setsid "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$s3_port" \
    >"$STATE/moto.log" 2>&1 </dev/null &
  echo $! >"$STATE/moto.pid"

  local az_url="http://127.0.0.1:$az_port" s3_url="http://127.0.0.1:$s3_port"
  wait_for azurite "$(cat "$STATE/azurite.pid")" "$az_url/$AZ_ACCOUNT?comp=list"
  wait_for moto "$(cat "$STATE/moto.pid")" "$s3_url/"
  create_container "$az_url"
  create_bucket "$s3_url"

  cat >"$STATE/env" <<EOF
export IMAGEBUILDER_TEST_AZURITE=az://$CONTAINER
export AZURE_STORAGE_USE_EMULATOR=true
export AZURITE_BLOB_STORAGE_URL=$az_url
export AZURE_STORAGE_ACCOUNT_NAME=$AZ_ACCOUNT
export AZURE_STORAGE_ACCOUNT_KEY='$AZ_KEY'
export IMAGEBUILDER_TEST_S3=s3://$BUCKET
export AWS_ENDPOINT=$s3_url
export AWS_ALLOW_HTTP=true
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
EOF
  log "azurite at $az_url, moto at $s3_url; environment in $STATE/env"
}

stop() {
  local name pid
  for name in azurite moto; do
    [ -f "$STATE/$name.pid" ] || continue
    pid=$(cat "$STATE/$name.pid")
    # The pid leads its own process group (setsid above): end that group only.
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$STATE/$name.pid"
  done
  rm -rf "$STATE/azurite-data"
}

cmd=${1:-}
STATE=${2:-}
case "$cmd" in
  install) install ;;
  start | stop | env)
    [ -n "$STATE" ] || { log "usage: $0 $cmd STATE_DIR"; exit 2; }
    case "$cmd" in
      start) start ;;
      stop) stop ;;
      env) cat "$STATE/env" ;;
    esac
    ;;
  *)
    log "usage: $0 install | start STATE_DIR | env STATE_DIR | stop STATE_DIR"
    exit 2
    ;;
esac
