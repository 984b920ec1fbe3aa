# Shared by the test runners (sourced). Run from the repository root.
#
#   require_library         fail clearly when target/release/libcloudauth.so is not built
#   LINK                    linker flags for the fresh build (build.rs makes the soname symlink
#                           libcloudauth.so.0 beside it; the rpath finds it at run time)
#   valgrind_run NAME LOG PROG [ARGS...]
#                           runs PROG under the stand-in and valgrind memcheck; prints the
#                           summary lines; fails unless 0 errors and no definitely lost bytes

root=$(pwd)
LIB=target/release/libcloudauth.so
LINK=(-Ltarget/release -lcloudauth -Wl,-rpath,"$root/target/release")

require_library() {
  [[ -f $LIB ]] || { echo "$(basename "$0"): $LIB is missing; build it first (make build)" >&2; exit 1; }
  [[ -e target/release/libcloudauth.so.0 ]] ||
    { echo "$(basename "$0"): target/release/libcloudauth.so.0 is missing; rebuild (cargo build --release)" >&2; exit 1; }
}

valgrind_run() {
  local name=$1 log=$2 rc summary leaks
  shift 2
  command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; return 1; }
  # Everything is ~20-50x slower under valgrind: the timing tests stretch their timeouts and
  # delays by this factor (their assertions stay the same).
  export CLOUDAUTH_TEST_TIME_FACTOR=${CLOUDAUTH_TEST_TIME_FACTOR:-10}
  set +e
  tests/standin/with_server.sh valgrind --suppressions=tests/valgrind/threads-after-fork.supp --child-silent-after-fork=yes --leak-check=full --errors-for-leak-kinds=definite \
    --error-exitcode=99 --track-origins=yes --num-callers=30 --log-file="$log" "$@"
  rc=$?
  set -e
  summary=$(grep -E 'ERROR SUMMARY' "$log" | tail -1 | sed 's/^==[0-9]*== //')
  leaks=$(grep -E 'definitely lost|no leaks are possible' "$log" | tail -1 | sed 's/^==[0-9]*== *//')
  echo "valgrind $name: $summary"
  echo "valgrind $name: ${leaks:-no leak summary}  (full log: $log)"
  if ((rc != 0)) || ! grep -q 'ERROR SUMMARY: 0 errors' <<<"$summary" ||
     ! grep -Eq 'definitely lost: 0 bytes|no leaks are possible' <<<"$leaks"; then
    echo "valgrind $name: errors or definitely lost memory (exit $rc; 99 = valgrind found errors)" >&2
    grep -E -A25 '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' "$log" | head -150 >&2 || true
    return 1
  fi
}

# --sanitize (run_c.sh, run_cpp.sh, run_hostile.sh): the test program built with gcc's
# AddressSanitizer and UndefinedBehaviorSanitizer, linked to the library as it ships (not
# instrumented: ASan still sees every malloc/free the Rust side makes, through its
# interceptors). Any report fails the run (halt_on_error, -fno-sanitize-recover).
# Leaks: LeakSanitizer runs at exit with the same policy as the valgrind runs, a leak of the
# program's or of the library's own allocations fails; what Rust keeps for the process's life
# (thread-locals of threads still running at exit, the lazily made runtimes) is reachable
# from globals, which LSan does not report.
SANITIZE_FLAGS=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
sanitize_env() {
  command -v "${CC:-cc}" >/dev/null || { echo "no C compiler" >&2; return 1; }
  export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0:exitcode=86:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:exitcode=87}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-exitcode=88}
  # Timing tests: ASan slows the C side 2-3x; the library itself runs at full speed.
  export CLOUDAUTH_TEST_TIME_FACTOR=${CLOUDAUTH_TEST_TIME_FACTOR:-2}
}
