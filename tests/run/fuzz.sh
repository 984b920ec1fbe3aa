#!/usr/bin/env bash
# The coverage-guided fuzz targets (fuzz/, cargo fuzz + libFuzzer), each for a set time.
#
#   tests/run/fuzz.sh SECONDS [TARGET...]   every target (or those named) for SECONDS each
#
# Builds all targets once (nightly, `cargo fuzz build`, reused by later runs), then runs each
# binary on target/fuzz-corpus/<target> (what it learns, kept between runs) plus the committed
# seeds fuzz/seeds/<target>. A crash, leak, timeout (FUZZ_TIMEOUT s per input) or out-of-memory
# fails the run and leaves the input in target/fuzz-artifacts/<target>/; copy it to
# fuzz/regressions/<target>/ with the fix (tests/fuzz_corpus.rs replays those on stable).
# Prints each target's executions and libFuzzer's coverage figures (cov: edges, ft: features).
#
# Needs the nightly toolchain and cargo-fuzz: both are installed when missing (rustup, then
# `cargo install cargo-fuzz` from crates.io). FUZZ_SANITIZER (default none; address works and
# rebuilds everything) is passed to cargo fuzz. FUZZ_SEED fixes libFuzzer's seed: the smoke pass of
# `make test` uses 1, so a fresh clone explores the same inputs every time (what it finds is
# the same on every machine; `make fuzz` explores anew).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:?usage: tests/run/fuzz.sh SECONDS [TARGET...]}
shift
sanitizer=${FUZZ_SANITIZER:-none}
all=$(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v '^cloudauth-fuzz$')
targets=("$@")
((${#targets[@]})) || mapfile -t targets <<<"$all"

banner() { printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!!! %s\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' "$*" >&2; }

# cargo fuzz needs a nightly compiler (libFuzzer's -Zsanitizer=... and coverage flags).
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "run_fuzz: no nightly toolchain; installing it with rustup (minimal profile)"
  if ! command -v rustup >/dev/null || ! rustup toolchain install nightly --profile minimal; then
    banner "FUZZING SKIPPED: no nightly Rust and rustup could not install it (no rustup, or static.rust-lang.org unreachable). The committed fuzz inputs still run on stable in tests/fuzz_corpus.rs."
    exit 0
  fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "run_fuzz: installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi

echo "run_fuzz: building ${#targets[@]} target(s) (nightly, sanitizer $sanitizer; reused when unchanged)"
build=(cargo +nightly fuzz build -O -a -s "$sanitizer")
if (($# == 0)); then
  (cd fuzz && "${build[@]}")
else
  for t in "${targets[@]}"; do (cd fuzz && "${build[@]}" "$t"); done
fi
bin=fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release

failed=0
printf '%-20s %12s %8s %8s %7s\n' target executions cov ft corpus >target/fuzz-summary.txt
for t in "${targets[@]}"; do
  mkdir -p "target/fuzz-corpus/$t" "target/fuzz-artifacts/$t"
  log=target/fuzz-artifacts/$t.log
  set +e
  "$bin/$t" "target/fuzz-corpus/$t" "fuzz/seeds/$t" -max_total_time="$seconds" -max_len=8192 \
    ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
    -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="target/fuzz-artifacts/$t/" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  done_line=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$done_line")
  printf '%-20s %12s %8s %8s %7s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" >>target/fuzz-summary.txt
  if ((rc != 0)); then
    failed=1
    echo "run_fuzz: $t FAILED (exit $rc); input in target/fuzz-artifacts/$t/, log $log" >&2
    grep -E -A12 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer' "$log" | head -40 >&2
  fi
done
cat target/fuzz-summary.txt
((failed == 0)) || exit 1
echo "run_fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
