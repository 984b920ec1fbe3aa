#!/usr/bin/env bash
# The soak (`make soak`): tests/soak/soak.c for SOAK_SECONDS (default 600) against the stand-in
# behind tests/netfault/proxy.py --soak, all on 127.0.0.1:
#   - the stand-in: tokens that live 20 s (refreshed 5 s ahead: rotation), one API request in
#     200 revokes its token and answers 401, kept-alive connections closed after 1 s idle
#     (stale connections), same-origin redirects;
#   - the proxy: on one request in ten, a reset mid-answer, a stall (the call times out) or a
#     slow answer; it counts what the server answered, per request line.
# Passes with zero lost or doubly-ended requests, no request acted on twice, every success acted
# on once, flat RSS and descriptor counts (soak.c), and a bounded number of token requests.
#
#   SOAK_SECONDS=600 tests/soak/run.sh        SOAK_PAUSE_US: pause between a thread's requests
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/run/lib.sh
require_library

seconds=${SOAK_SECONDS:-600}
out=target/soak
mkdir -p "$out"
${CC:-cc} -std=c11 -Wall -Wextra -Werror -O1 -g -pthread -Iinclude tests/soak/soak.c "${LINK[@]}" \
  -o "$out/soak"

dir=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n ${SOAK_KEEP:-} ]] && cp -r "$dir" "$SOAK_KEEP"
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

life=$((seconds + 120))
python3 tests/standin/server.py --port 0 --lifetime "$life" --idle-timeout 1 --port-file "$dir/port" >/dev/null &
pids+=($!)
for _ in $(seq 1 100); do [[ -s $dir/port ]] && break; sleep 0.1; done
[[ -s $dir/port ]] || { echo "soak: the stand-in did not start" >&2; exit 1; }
port=$(<"$dir/port")
ctl() { # ctl METHOD PATH [JSON]
  python3 - "$port" "$@" <<'EOF'
import sys, urllib.request as u
port, method, path = sys.argv[1:4]
data = sys.argv[4].encode() if len(sys.argv) > 4 else (b"" if method == "POST" else None)
print(u.urlopen(u.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method), timeout=10).read().decode())
EOF
}
ctl POST /_control/config '{"token_expires_in": 20, "api_revoke_ratio": 0.005, "api_revoke_gap_ms": 3000, "random_seed": 7}' >/dev/null

python3 tests/netfault/proxy.py --soak --seed 11 --listen 127.0.0.1:0 --upstream "127.0.0.1:$port" \
  --lifetime "$life" --ready-file "$dir/proxy" --count-file "$dir/counts.json" &
proxy=$!
pids+=($proxy)
for _ in $(seq 1 100); do [[ -s $dir/proxy ]] && break; sleep 0.1; done
[[ -s $dir/proxy ]] || { echo "soak: the proxy did not start" >&2; exit 1; }

set +e
"$out/soak" "http://127.0.0.1:$(<"$dir/proxy")" "$seconds" "$dir/requests.txt"
rc=$?
set -e
kill -TERM "$proxy"
for _ in $(seq 1 100); do [[ -s $dir/counts.json ]] && break; sleep 0.1; done
ctl GET /_control/stats >"$dir/stats.json"

set +e
python3 - "$dir/requests.txt" "$dir/counts.json" "$dir/stats.json" "$seconds" <<'EOF'
import json, re, sys
requests, counts, stats, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
both = json.load(open(counts))
counts, statuses = both["acted"], both["statuses"]
stats = json.load(open(stats))
answered = {}  # id -> [count per request line]
for line, c in counts.items():
    m = re.search(r"[?&]n=(\d+)", line)
    if m:
        answered.setdefault(int(m.group(1)), []).append(c)
bad = []
posts_twice = [l for l, c in counts.items() if c > 1 and l.startswith("POST ") and "/connect/token" not in l]
if posts_twice:
    l = posts_twice[0]
    bad.append(f"{len(posts_twice)} POST(s) acted on twice, e.g. {l!r} (answers {statuses[l]})")
# A GET is sent again only when its connection failed before any answer reached the client, or
# after a 401: every extra time the server acted on a GET must be one of those resends.
get_extra = sum(c - 1 for l, c in counts.items() if c > 1 and l.startswith("GET "))
oks = missing = 0
for line in open(requests):
    if line.startswith("# resends"):
        _, _, conn_resends, auth_resends = line.split()
        continue
    n, kind, klass = line.split()
    if klass == "ok":
        oks += 1
        got = answered.get(int(n), [])
        want = 2 if kind == "redirect" else 1
        if len(got) != want or ("post" in kind and got != [1]):
            missing += 1
if missing:
    bad.append(f"{missing} successful request(s) not acted on by the server (or a POST not exactly once)")
resends = int(conn_resends) + int(auth_resends)
print(f"soak: GETs acted on again: {get_extra} (client resends: {conn_resends} after a connection "
      f"failed unanswered, {auth_resends} after a 401); POSTs acted on twice: {len(posts_twice)}")
if get_extra > resends:
    bad.append(f"GETs acted on {get_extra} extra times, more than the {resends} resends the client made")
tokens = stats["token_requests"]
# One token per rotation (20 s lifetime, refreshed ahead) plus one per revocation (each 401).
bound = seconds // 10 + stats["unauthorized"] + 5
print(f"soak: server: {stats['api_requests']} API requests, {tokens} token requests "
      f"(bound {bound}: one per rotation and per 401), {stats['unauthorized']} answered 401, "
      f"{stats['connections']} connections; {oks} successes, each acted on by the server")
if tokens > bound:
    bad.append(f"{tokens} token requests, more than {bound}")
for b in bad:
    print(f"soak: FAIL: {b}")
sys.exit(1 if bad else 0)
EOF
check=$?
set -e
if ((rc != 0 || check != 0)); then echo "soak: FAILED" >&2; exit 1; fi
echo "soak: passed ($seconds s)"
