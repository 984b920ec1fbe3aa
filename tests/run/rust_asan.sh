#!/usr/bin/env bash
# The Rust side under AddressSanitizer (and LeakSanitizer at exit): the library and its tests
# built with nightly's -Zsanitizer=address into target/asan (std itself is not rebuilt:
# -Zbuild-std would need the rust-src component and twice the build), then the tests that
# exercise the unsafe code: the C ABI contract (every export, NULL arguments, injected panics),
# the unit tests (the queues, the fork-generation cells, the seal), the fuzz corpora, and
# requests end to end against the stand-in (responses, async and queued operations, stale
# connections, DPoP).
#
#   tests/run/rust_asan.sh [CARGO TEST ARGS...]
#
# Needs the nightly toolchain (installed with rustup when missing). About 3 CPU minutes to build
# the first time; later runs reuse target/asan.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! cargo +nightly --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal ||
    { echo "run_rust_asan: no nightly toolchain and rustup could not install it" >&2; exit 1; }
fi
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes"
export RUSTDOCFLAGS="-Zsanitizer=address"
export CARGO_TARGET_DIR=target/asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
tests=(--lib --test ffi_contract --test fuzz_corpus --test no_secret_in_debug
       --test authorized_requests --test response_memory --test stale_connections --test dpop)
# --target keeps build scripts and proc-macros (run by the compiler) uninstrumented.
cargo +nightly test --target "$host" --no-default-features "${tests[@]}" "$@"
echo "run_rust_asan: clean"
