#!/usr/bin/env bash
# Runs CMD with the stand-in server (tests/standin/server.py, see PROTOCOL.md) listening on
# 127.0.0.1; exports STANDIN_URL and STANDIN_PORT; stops the server; returns CMD's exit code.
#
#   tests/standin/with_server.sh CMD [ARGS...]
#
# Environment: STANDIN_LIFETIME (seconds, default 1800) bounds the server's life even if this
# script is killed with SIGKILL; STANDIN_VERBOSE=1 makes the server log every request to stderr.
set -uo pipefail
if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
verbose=()
[[ ${STANDIN_VERBOSE:-} == 1 ]] && verbose=(--verbose)
python3 "$here/server.py" --port 0 --lifetime "${STANDIN_LIFETIME:-1800}" --port-file "$dir/port" \
  "${verbose[@]}" >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 1 100); do # bounded: about 10 s
  [[ -s $dir/port ]] && break
  kill -0 $pid 2>/dev/null || { echo "with_server: the stand-in exited early" >&2; exit 1; }
  sleep 0.1
done
[[ -s $dir/port ]] || { echo "with_server: the stand-in did not start within 10 s" >&2; exit 1; }
STANDIN_PORT=$(<"$dir/port")
export STANDIN_PORT
export STANDIN_URL="http://127.0.0.1:$STANDIN_PORT"

"$@"
rc=$?
exit $rc
