#!/usr/bin/env bash
# The browser tests, in headless Chromium with WebGPU (chromedriver; CI=true makes a
# missing adapter a failure, never a skip):
#   1. tests/browser.rs (wasm-bindgen-test): every public golden case, the async split
#      phases and bad input on the browser's WebGPU adapter;
#   2. tests/page.py: the demo page built by build.sh, served on 127.0.0.1, driven through
#      WebDriver (both parts), its numbers compared with the native API's (the workspace's
#      target/release/examples/curve and target/release/segloss must be built); a
#      screenshot goes to OUT_DIR/page.png.
#
#   bash crates/segloss-web/test.sh [OUT_DIR]      (default target/segloss-web)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/segloss-web}"
export PATH="$HOME/.cargo/bin:$PATH"
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
python3 "$here/tests/page.py" --site "$out/site" --root "$root" --out "$out"
