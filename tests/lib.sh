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
