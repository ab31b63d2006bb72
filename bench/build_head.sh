#!/usr/bin/env bash
# Build the committed HEAD (not the working tree, which others may be editing)
# into bench/out/target, seeded from target/release so only raftcache itself
# is recompiled. Prints the binary path; use it as RAFTCACHE_BIN=... for the
# other scripts:   export RAFTCACHE_BIN=$(bench/build_head.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# keyed by the source trees, so commits that only touch bench/ reuse the build
rev=$(git rev-parse HEAD:src HEAD:Cargo.toml HEAD:Cargo.lock | cut -c1-8 | paste -sd-)
src=bench/out/head-$rev
tgt=$PWD/bench/out/target
if [[ ! -x $tgt/release/raftcache-$rev ]]; then
  rm -rf "$src" && mkdir -p "$src"
  git archive HEAD | tar -x -C "$src"
  find "$src" -type f -exec touch {} + # newer than any cached fingerprint
  if [[ ! -d $tgt/release && -d target/release ]]; then mkdir -p "$tgt" && cp -a target/release "$tgt/"; fi
  (cd "$src" && CARGO_TARGET_DIR=$tgt cargo build --release --quiet) >&2
  cp "$tgt/release/raftcache" "$tgt/release/raftcache-$rev"
fi
echo "$tgt/release/raftcache-$rev"
