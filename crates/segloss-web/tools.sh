# Sourced by build.sh and test.sh: the wasm32 target and wasm-bindgen-cli (with
# wasm-bindgen-test-runner) at the exact wasm-bindgen version of this crate's lock.
need_wasm_tools() {
  local here want have
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  rustup target list --installed | grep -qx wasm32-unknown-unknown ||
    rustup target add wasm32-unknown-unknown
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$here/Cargo.lock")"
  have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
  if [ "$have" != "$want" ]; then
    echo "installing wasm-bindgen-cli $want (found: ${have:-none})"
    # Not --locked: the CLI's own lock names a webpki-roots release the registry no
    # longer offers.
    cargo install wasm-bindgen-cli --version "$want"
  fi
}
