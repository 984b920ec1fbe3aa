#!/usr/bin/env bash
# Runs a command with CPU hogs beside it: `yes >/dev/null` processes (HOGS of them, default
# 2, one per vCPU of the CI machine), stopped when the command ends, however it ends. The
# timing tests must hold on a loaded machine (`make test-loaded` runs `make test` this way).
#
#   tests/run/with_cpu_hogs.sh make test
#   HOGS=4 tests/run/with_cpu_hogs.sh tests/run/c.sh
set -uo pipefail
if (($# == 0)); then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi
hogs=()
stop_hogs() {
  ((${#hogs[@]})) && kill "${hogs[@]}" 2>/dev/null
  wait "${hogs[@]}" 2>/dev/null
  hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM
for ((i = 0; i < ${HOGS:-2}; i++)); do
  yes >/dev/null &
  hogs+=($!)
done
echo "with_cpu_hogs: ${#hogs[@]} hogs (pids ${hogs[*]}) beside: $*"
"$@"
status=$?
stop_hogs
echo "with_cpu_hogs: '$*' exited $status"
exit "$status"
