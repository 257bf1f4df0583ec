#!/usr/bin/env bash
# The browser tests, in headless Chromium with WebGPU (chromedriver; CI=true makes a
# missing adapter a failure, never a skip):
#   1. tests/browser.rs (wasm-bindgen-test): every public golden case, the async split
#      phases and bad input on the browser's WebGPU adapter;
#   2. tests/page.py: the demo page built by build.sh, served on 127.0.0.1, driven through
#      WebDriver (both parts), its numbers compared with the native API's (the workspace's
#      release examples/curve and segloss must be built, in the workspace's target
#      directory: CARGO_TARGET_DIR or a cargo config is honoured); a screenshot goes to
#      OUT_DIR/page.png.
#
#   bash crates/segloss-web/test.sh [OUT_DIR]      (default <target dir>/segloss-web)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
# The workspace's target directory, as cargo resolves it (CARGO_TARGET_DIR, a config).
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
out="${1:-$target_dir/segloss-web}"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
source "$here/tools.sh"
need_wasm_tools
command -v chromedriver >/dev/null || { echo "chromedriver not found (Debian: chromium-driver)"; exit 1; }

cd "$here"
echo "== browser suite (wasm-bindgen-test, headless Chromium + WebGPU)"
export CHROMEDRIVER="$(command -v chromedriver)"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=600
cargo test --release --target wasm32-unknown-unknown --test browser -- --nocapture

echo "== demo page"
bash "$here/build.sh" "$out/site"
python3 "$here/tests/page.py" --site "$out/site" --release "$target_dir/release" --out "$out"
