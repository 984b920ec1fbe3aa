#!/usr/bin/env bash
# Runs CMD with the stand-in server listening on 127.0.0.1; exports STANDIN_URL and STANDIN_PORT.
# Usage: tests/standin/with_server.sh CMD [ARGS...]   (returns CMD's exit code)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
python3 "$here/server.py" --port 0 --lifetime "${STANDIN_LIFETIME:-1800}" --port-file "$dir/port" >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
  [[ -s $dir/port ]] && break
  kill -0 $pid 2>/dev/null || { echo "with_server: the stand-in exited early" >&2; exit 1; }
  sleep 0.1
done
[[ -s $dir/port ]] || { echo "with_server: the stand-in did not start within 10 s" >&2; exit 1; }
export STANDIN_PORT=$(cat "$dir/port")
export STANDIN_URL="http://127.0.0.1:$STANDIN_PORT"
"$@"
