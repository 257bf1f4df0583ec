#!/usr/bin/env bash
# Builds segloss's demo page, a static site, into OUT_DIR (index.html, app.js, the wasm
# module and its JavaScript bindings): serve it over HTTP (e.g. `python3 -m http.server
# -d OUT_DIR`) and open it in a browser with WebGPU. Installs what it needs when it is
# missing: the wasm32 target and wasm-bindgen-cli at the exact wasm-bindgen version of
# this crate's Cargo.lock.
#
#   bash crates/segloss-web/build.sh OUT_DIR
set -euo pipefail
out="${1:?usage: build.sh OUT_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
source "$here/tools.sh"
need_wasm_tools
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$here"
cargo build --release --target wasm32-unknown-unknown --lib
# Where cargo put the module: CARGO_TARGET_DIR, a config's build.target-dir, or ./target.
target_dir="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
wasm-bindgen --target web --no-typescript --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/release/segloss_web.wasm"
cp www/index.html www/app.js www/style.css "$out/"
echo "built the page into $out ($(du -sh "$out" | cut -f1))"
