#!/usr/bin/env bash
# Tests the command-line tool target/release/cloudauth against the local stand-in, as a shell
# user runs it: every subcommand and format, the exit statuses, the file cache shared by
# successive invocations, a wrong secret, and no secret (nor, on stderr, any token) in any
# output. Every invocation is bounded by `timeout`; each test gets a reset stand-in and an
# empty cache directory (XDG_CACHE_HOME).
#
#   tests/run/cli.sh [FILTER]     every test, or those whose name contains FILTER
#
# Needs: python3 (the stand-in, JSON checks), curl (the `curl` subcommand and control calls),
# bash (completion syntax check).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ -z ${STANDIN_URL:-} ]]; then exec tests/standin/with_server.sh "$0" "$@"; fi

B=$PWD/target/release/cloudauth
[[ -x $B ]] || { echo "run_cli: $B is missing; build it first (make build)" >&2; exit 1; }
command -v curl >/dev/null || { echo "run_cli: curl is not installed (make deps)" >&2; exit 1; }
filter=${1:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
outs=$work/outputs
mkdir -p "$outs"

SECRET=demo-secret
ODD_ID='odd+id:%'
ODD_SECRET='s3cr+t:with%odd chars&='
WRONG_SECRET=wrong-secret-never-shown
ARGV_SECRET=argv-secret-never-shown

passed=0 failed=0 current=
bad() { echo "  FAILED ($current): $*" >&2; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }
check() { # check DESCRIPTION CMD...
  local what=$1; shift
  if "$@"; then ok; else bad "$what"; fi
}
check_eq() { # check_eq DESCRIPTION GOT WANT
  if [[ $2 == "$3" ]]; then ok; else bad "$1: got '$2', expected '$3'"; fi
}
contains() { [[ $1 == *"$2"* ]]; }
lacks() { [[ $1 != *"$2"* ]]; }

# cli WANT_STATUS [ARGS...]: runs the tool with stdin from $STDIN (empty by default); sets
# OUT, ERR (their text) and STATUS; every output is kept for the final secret scan.
n=0
cli() {
  local want=$1; shift
  n=$((n + 1))
  set +e
  timeout 30 "$B" "$@" <<<"${STDIN:-}" >"$outs/$n.out" 2>"$outs/$n.err"
  STATUS=$?
  set -e
  OUT=$(<"$outs/$n.out") ERR=$(<"$outs/$n.err")
  if [[ $STATUS != "$want" ]]; then
    bad "cloudauth $* exited $STATUS, expected $want; stderr: $ERR"
  else
    ok
  fi
}

ctl() { # ctl PATH [JSON]: POST to the stand-in's control API
  local body=()
  [[ -z ${2:-} ]] || body=(-H 'Content-Type: application/json' -d "$2")
  curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST "${body[@]}" "$STANDIN_URL$1" |
    grep -qx 200 || bad "control call $1 failed"
}
stat() { # stat FIELD: one number from /_control/stats
  curl -sS -m 10 "$STANDIN_URL/_control/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
json_get() { # json_get TEXT EXPR: evaluates EXPR on the parsed JSON `v`
  python3 -c 'import json,sys; v=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# The stand-in's credentials and URLs, as a user would export them.
standin_env() {
  export CLOUDAUTH_CLIENT_ID=demo-client CLOUDAUTH_CLIENT_SECRET=$SECRET
  export CLOUDAUTH_TOKEN_URL=$STANDIN_URL/connect/token CLOUDAUTH_BASE_URL=$STANDIN_URL
}

# ---- the tests ---------------------------------------------------------------------------

t_version_and_help() {
  local version
  version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -1)
  cli 0 --version
  check_eq "--version prints the library version" "$OUT" "cloudauth $version"
  cli 0 --help
  check "--help lists the subcommands" contains "$OUT" "request"
  check "--help documents the exit statuses" contains "$OUT" "106 credentials rejected"
  cli 0 help token
  check "help token shows the formats" contains "$OUT" "bare, header, json"
}

t_completions() {
  local shell
  for shell in bash zsh fish elvish powershell; do
    cli 0 completions "$shell"
    check "completions $shell mention the subcommands" contains "$OUT" "request"
  done
  cli 0 completions bash
  check "the bash completion script parses" bash -n "$outs/$n.out"
  check "the bash completion registers itself" \
    bash -c "source '$outs/$n.out' && complete -p cloudauth >/dev/null"
  cli 2 completions tcsh
}

t_usage_errors() {
  cli 2
  cli 2 frobnicate
  cli 2 token --format yaml
  cli 2 request
  cli 2 --set no-equals-sign token
  check "a bad --set names the argument" contains "$ERR" "no-equals-sign"
  cli 2 --set "client_secret=$ARGV_SECRET" token
  check "a secret on the command line is refused with the way to give it" contains "$ERR" "CLOUDAUTH_CLIENT_SECRET"
  check_eq "token requests after usage errors" "$(stat token_requests)" 0
}

t_token_formats() {
  local bare header
  cli 0 token
  bare=$OUT
  check_eq "bare: one line" "$(wc -l <"$outs/$n.out")" 1
  check "bare: a JWT-like token" grep -Eqx '[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+' "$outs/$n.out"
  check_eq "the token is accepted by the API" \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $bare" "$STANDIN_URL/headers")" 200
  check_eq "nothing on stderr" "$ERR" ""

  cli 0 token --format header
  header=$OUT
  check "header: Authorization: Bearer <token>" \
    grep -Eqx 'Authorization: Bearer [A-Za-z0-9_.-]+' "$outs/$n.out"
  check_eq "header: the cached token of the first call" "$header" "Authorization: Bearer $bare"

  cli 0 token --format json
  check_eq "json: the fields" "$(json_get "$OUT" 'sorted(v)')" \
    "['access_token', 'expires_in', 'expires_on', 'token_type']"
  check_eq "json: the same token" "$(json_get "$OUT" 'v["access_token"]')" "$bare"
  check_eq "json: token_type" "$(json_get "$OUT" 'v["token_type"]')" Bearer
  check_eq "json: expires_in within the stand-in's 3600 s" \
    "$(json_get "$OUT" '3500 <= v["expires_in"] <= 3600')" True
  check_eq "json: expires_on = now + expires_in (epoch seconds)" \
    "$(json_get "$OUT" "abs(v['expires_on'] - v['expires_in'] - $(date +%s)) <= 5")" True
  check_eq "one token request for the three formats" "$(stat token_requests)" 1
}

t_ten_invocations_one_token_request() {
  local i first=
  for i in $(seq 1 10); do
    cli 0 token
    [[ -n $first ]] || first=$OUT
    check_eq "invocation $i: the same token" "$OUT" "$first"
  done
  check_eq "ten invocations, one token request (token_cache=file is the default)" \
    "$(stat token_requests)" 1
  check "the cache directory was created" test -d "$XDG_CACHE_HOME/cloudauth"
  check "the cache holds no plain secret or token" \
    bash -c "! grep -rqF -e '$SECRET' -e '$first' '$XDG_CACHE_HOME'"

  # The environment overrides the tool's default.
  ctl /_control/reset
  for i in 1 2 3; do CLOUDAUTH_TOKEN_CACHE=memory cli 0 token; done
  check_eq "CLOUDAUTH_TOKEN_CACHE=memory: one token request per invocation" "$(stat token_requests)" 3
}

t_wrong_secret() {
  CLOUDAUTH_CLIENT_SECRET=$WRONG_SECRET cli 106 token
  check "the library's message with the server's error" contains "$ERR" "invalid_client"
  check_eq "one line on stderr" "$(wc -l <"$outs/$n.err")" 1
  check_eq "nothing on stdout" "$OUT" ""
  CLOUDAUTH_CLIENT_SECRET=$WRONG_SECRET cli 106 request /headers
  CLOUDAUTH_CLIENT_SECRET=$WRONG_SECRET cli 106 curl -s "$STANDIN_URL/headers"
  check_eq "curl is not run without a token" "$(stat api_requests)" 0
}

t_secret_sources() {
  unset CLOUDAUTH_CLIENT_SECRET
  cli 101 token
  check "no secret: the library says so" contains "$ERR" "client_secret"

  STDIN=$SECRET cli 0 token --secret-stdin
  check "--secret-stdin" grep -Eqx '[A-Za-z0-9_.-]+' "$outs/$n.out"
  STDIN= cli 2 token --secret-stdin
  STDIN=$SECRET cli 2 request --secret-stdin -d @- /echo

  printf '%s\n' "$SECRET" >"$work/secret"
  CLOUDAUTH_CLIENT_SECRET_FILE=$work/secret cli 0 token
  check "CLOUDAUTH_CLIENT_SECRET_FILE (trailing newline dropped)" grep -Eqx '[A-Za-z0-9_.-]+' "$outs/$n.out"
  CLOUDAUTH_CLIENT_SECRET_FILE=$work/no-such-file cli_any token
  check "a missing secret file fails" test "$STATUS" -ne 0
  check "a missing secret file is named" contains "$ERR" "no-such-file"
  CLOUDAUTH_CLIENT_SECRET_FILE=$work/no-such-file STDIN=$SECRET cli 0 token --secret-stdin

  # Another prefix, odd credentials, HTTP Basic: the secret in none of its encodings anywhere.
  unset CLOUDAUTH_CLIENT_ID CLOUDAUTH_TOKEN_URL CLOUDAUTH_BASE_URL
  MYAPP_CLIENT_ID=$ODD_ID MYAPP_CLIENT_SECRET=$ODD_SECRET MYAPP_TOKEN_URL=$STANDIN_URL/connect/token \
    MYAPP_BASE_URL=$STANDIN_URL MYAPP_AUTH_METHOD=client_secret_basic \
    cli 0 --env-prefix MYAPP_ request -v /headers
  check "--env-prefix: authorized" contains "$OUT" '"authorization": "Bearer '
}

cli_any() { # cli with any status (checked by the caller)
  n=$((n + 1))
  set +e
  timeout 30 "$B" "$@" <<<"${STDIN:-}" >"$outs/$n.out" 2>"$outs/$n.err"
  STATUS=$?
  set -e
  OUT=$(<"$outs/$n.out") ERR=$(<"$outs/$n.err")
}

t_request() {
  local token
  cli 0 request /headers
  token=$(json_get "$OUT" 'v["headers"]["authorization"]')
  check "GET: the library's Bearer token" grep -Eq '^Bearer [A-Za-z0-9_.-]+$' <<<"$token"
  cli 0 request "$STANDIN_URL/headers" -H 'X-Trace: abc 123' -H 'Accept: application/json'
  check_eq "-H: sent" "$(json_get "$OUT" 'v["headers"]["x-trace"]')" "abc 123"

  cli 0 request -d 'hello world' /echo
  check_eq "-d: POST by default, body echoed" "$OUT" "hello world"
  cli 0 request -X PUT -d 'x=1' -v /echo
  check "-X PUT" contains "$ERR" "x-echo-method: PUT"
  head -c 3000 /dev/urandom >"$work/blob"
  cli 0 request -d "@$work/blob" -o "$work/back" /echo
  check "-d @FILE and -o FILE: the bytes round-trip" cmp -s "$work/blob" "$work/back"
  check_eq "-o: nothing on stdout" "$OUT" ""
  STDIN=from-stdin cli 0 request -d @- /echo
  check_eq "-d @-: stdin (with its newline)" "$OUT" "from-stdin"
  head -c $((6 << 20)) /dev/urandom >"$work/big"
  cli 0 request -v -X PUT -d "@$work/big" -o "$work/big.back" /echo
  check "-d @FILE streams a 6 MiB file with its length, -o gets it back" cmp -s "$work/big" "$work/big.back"
  check "-v: the file's length" contains "$ERR" "> ($((6 << 20)) body bytes)"
  ctl /_control/config '{"api_script": [{"status": 401, "body": "scripted"}]}'
  cli 0 request -d "@$work/blob" /echo -o "$work/back2"
  check "-d @FILE after a 401: the file is read again and resent" cmp -s "$work/blob" "$work/back2"
  ctl /_control/config '{"api_script": [{"status": 401, "body": "scripted"}]}'
  STDIN=once cli 0 request -v -d @- /echo
  check_eq "-d @- after a 401: stdin cannot be read again, the 401 is the answer" "$OUT" "scripted"
  check "-v: stdin goes chunked" contains "$ERR" "> (body of unknown length, sent chunked)"
  check "-v: the 401 on stderr" contains "$ERR" "< HTTP 401"
  cli 1 request -d "@$work/no-such-file" /echo
  check "-d @missing names the file" contains "$ERR" "no-such-file"
  cli 1 request -o "$work/no-dir/out" /headers

  cli 0 request /status/404
  check_eq "404 without --fail: the body, status 0" "$OUT" '{"status": 404}'
  cli 22 request --fail /status/404
  check_eq "--fail: no body" "$OUT" ""
  check "--fail: the status on stderr" contains "$ERR" "HTTP 404"
  cli 22 request -f /status/503
  cli 0 request --fail /status/204

  cli 0 request -v /headers
  check "-v: the status" contains "$ERR" "< HTTP 200"
  check "-v: the response headers" contains "$ERR" "< content-type: application/json"
  check "-v: the request line" contains "$ERR" "> GET /headers"
  cli 101 request -v -H "Authorization: Bearer user-given-secret" /headers
  check "a user-given Authorization header is refused" contains "$ERR" "Authorization header is set by the session"
  check "-v hides a user-given Authorization header" lacks "$ERR" "user-given-secret"

  cli 101 request -H 'Bad header' /headers
  cli 101 request -X 'NOT A METHOD' /headers
}

t_request_resends_after_401() {
  ctl /_control/config '{"api_script": [{"status": 401, "body": "scripted"}]}'
  cli 0 request -v /headers
  check "a 401, then the resend with a new token" contains "$OUT" '"authorization": "Bearer '
  check "-v: the first fetch's event and reason" contains "$ERR" "* event token_fetched reason=first_use http_status=200"
  check "-v: the 401's event" contains "$ERR" "* event unauthorized http_status=401"
  check "-v: the refetch's reason" contains "$ERR" "* event token_fetched reason=unauthorized"
  check_eq "the 401 dropped the token: two token requests" "$(stat token_requests)" 2
  check_eq "the request was sent twice" "$(stat api_requests)" 2

  # A token revoked while it sits in the file cache: the next invocation resends once.
  # (A reset forgets the tokens issued so far: start from an empty cache.)
  ctl /_control/reset
  export XDG_CACHE_HOME=$work/cache-revoked
  mkdir -p "$XDG_CACHE_HOME"
  cli 0 request /headers
  ctl /_control/revoke
  cli 0 request /headers
  check_eq "revoked token: one more token request" "$(stat token_requests)" 2
  check_eq "revoked token: one 401, then the resend" "$(stat unauthorized)" 1
  # The next invocation finds the fresh token in the file cache.
  cli 0 request /headers
  check_eq "the fresh token is shared" "$(stat token_requests)" 2
}

t_library_exit_statuses() {
  # Each failure must reach the endpoint, not a token cached by an earlier call.
  export CLOUDAUTH_TOKEN_CACHE=memory
  cli 103 --set token_url=http://example.invalid/connect/token token
  check "insecure: the library's message" contains "$ERR" "plain http"
  cli 103 request http://example.invalid/headers
  local closed
  closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  cli 104 --set "token_url=http://127.0.0.1:$closed/connect/token" --set max_retries=0 token
  cli 105 --set timeout_ms=300 request /delay/3000
  ctl /_control/config '{"token_script": [{"status": 200, "body": "not json"}]}'
  cli 108 token
  ctl /_control/config '{"token_default": {"status": 503}}'
  cli 107 --set max_retries=0 token
  cli 107 --set max_retries=1 --set max_retry_wait_ms=10 request -v /headers
  check "-v: the retry event" contains "$ERR" "* event retry result=CLOUDAUTH_ERR_TOKEN_ENDPOINT http_status=503"
  check "-v: the failure event" contains "$ERR" "* event token_fetch_failed"
  ctl /_control/config '{"token_default": null}'
  ctl /_control/config '{"token_script": [{"pad_bytes": 2000000}]}'
  cli 109 token
  cli 0 token
  cli 109 --set max_response_bytes=100 request '/big?bytes=1000'
}

t_identity_provider_keys() {
  # The v2 keys pass through --set to the library: a bad key file is named, never quoted.
  export CLOUDAUTH_TOKEN_CACHE=memory
  printf -- '-----BEGIN PRIVATE KEY-----\nNOTAKEYBUTSECRET\n-----END PRIVATE KEY-----\n' >"$work/bad-key.pem"
  cli 101 --set auth_method=private_key_jwt --set "client_key_file=$work/bad-key.pem" token
  check "bad key: named" contains "$ERR" "client_key_file: "
  check "bad key: not quoted" lacks "$ERR" "NOTAKEYBUTSECRET"
  cli 101 --set auth_method=private_key_jwt --set "client_key_file=$work/missing.pem" token
  check "missing key: named" contains "$ERR" "client_key_file: cannot read"
  cli 101 --set token_param.grant_type=password token
  check "reserved token_param: named" contains "$ERR" "token_param.grant_type"
  # audience, resource, a token_param and dpop are accepted; the stand-in ignores them.
  cli 0 --set audience=https://api.example --set resource=https://a.example,https://b.example \
    --set token_param.tenant=t1 --set dpop=true token
  cli 101 --set auth_method=client_secret_jwt --set client_assertion_alg=ES256 token
  check "client_secret_jwt: HS256 only" contains "$ERR" "client_assertion_alg"
}

t_curl() {
  # A curl in front of the real one records its argv and stdin.
  mkdir -p "$work/bin"
  cat >"$work/bin/curl" <<EOF
#!/usr/bin/env bash
printf '%s\n' "\$@" >"$work/curl.argv"
env >"$work/curl.env"
tee "$work/curl.stdin" | exec "$(command -v curl)" "\$@"
EOF
  chmod +x "$work/bin/curl"
  PATH=$work/bin:$PATH cli 0 curl -s "$STANDIN_URL/headers"
  local token
  token=$(json_get "$OUT" 'v["headers"]["authorization"]')
  check "curl: authorized" grep -Eq '^Bearer [A-Za-z0-9_.-]+$' <<<"$token"
  check "curl: the token is not in curl's argv" bash -c "! grep -qF -- '${token#Bearer }' '$work/curl.argv'"
  check_eq "curl: argv is -q -K - and the user's arguments, then the status line's -w" \
    "$(head -5 "$work/curl.argv" | tr '\n' ' ')" "-q -K - -s $STANDIN_URL/headers "
  check "curl: no CLOUDAUTH_* variable in curl's environment" bash -c "! grep -q '^CLOUDAUTH_' '$work/curl.env'"
  check "curl: not the secret either" bash -c "! grep -qF -- '$SECRET' '$work/curl.env'"
  MYAPP_CLIENT_ID=demo-client MYAPP_CLIENT_SECRET=$SECRET MYAPP_TOKEN_URL=$STANDIN_URL/connect/token \
    MYAPP_BASE_URL=$STANDIN_URL PATH=$work/bin:$PATH cli 0 --env-prefix MYAPP_ curl -s -o /dev/null "$STANDIN_URL/headers"
  check "curl: no variable of --env-prefix either" bash -c "! grep -q '^MYAPP_' '$work/curl.env'"
  check_eq "curl: the config on stdin" "$(<"$work/curl.stdin")" "header = \"Authorization: $token\""

  cli 0 curl -s -X POST --data-binary 'curl body' "$STANDIN_URL/echo"
  check_eq "curl: arguments passed through" "$OUT" "curl body"
  cli 22 curl -s --fail "$STANDIN_URL/status/404"
  cli 0 curl -s -o /dev/null "$STANDIN_URL/status/404"
  cli 2 curl --definitely-not-a-curl-option "$STANDIN_URL/headers"
  mkdir -p "$work/no-curl"
  ln -sf "$(command -v timeout)" "$work/no-curl/timeout"
  PATH=$work/no-curl cli 1 curl -s "$STANDIN_URL/headers"
  check "curl missing: said so" contains "$ERR" "curl"
  cli 103 curl -s http://example.invalid/
  # A path is joined to base_url, as `request` does; the user's --write-out still works and
  # the status line this command reads stays off stderr.
  cli 0 curl -s -o /dev/null -w '%{http_code}' /headers
  check_eq "curl /path: joined to base_url, -w kept" "$OUT" 200
  check_eq "curl: nothing on stderr" "$ERR" ""
}

# curl's reading of URLs, not ours: no scheme means http, also as host:port/path, with -G,
# with --url and in globs. A non-loopback host name is routed to the stand-in on loopback;
# the stand-in logs every request it gets, authorized or not: none may arrive.
t_curl_urls_as_curl_reads_them() {
  local host=api.example.test port=${STANDIN_URL##*:} route form
  route=(--connect-to "$host:80:127.0.0.1:$port" --connect-to "$host:443:127.0.0.1:$port")
  for form in "$host/headers" "$host:80/headers" "HTTP://$host/headers" "http:/$host/headers"; do
    cli 103 curl -s "${route[@]}" "$form"
    check "'$form' is plain http: the library's message" contains "$ERR" "plain http"
  done
  cli 103 curl -s "${route[@]}" -G -d a=1 "$host/headers"
  cli 103 curl -s "${route[@]}" --url "$host/headers"
  cli 103 curl -s "${route[@]}" "{https,http}://$host/headers"
  cli 103 curl -s "${route[@]}" -sS "$host:[80-81]/headers"
  cli 103 curl -s --resolve "$host:80:127.0.0.1" "$host:$port/headers"
  # URLs this command cannot see, or that curl reads as something other than http(s).
  printf 'url = "http://%s/headers"\n' "$host" >"$work/curl.config"
  cli 2 curl -s "${route[@]}" -K "$work/curl.config"
  check "-K: refused, and why" contains "$ERR" "cannot check"
  cli 2 curl -s "${route[@]}" --conf "$work/curl.config"
  cli 2 curl -s "${route[@]}" --next "$host/headers"
  cli 2 curl -s file:///proc/self/environ
  check "file:// is refused" contains "$ERR" "http(s) requests only"
  # ~/.curlrc is not read (-q): its URL would go unchecked.
  printf 'url = "http://%s/headers"\nconnect-to = "%s:80:127.0.0.1:%s"\n' "$host" "$host" "$port" >"$work/.curlrc"
  HOME=$work cli 0 curl -s -o /dev/null "$STANDIN_URL/headers"
  local log
  log=$(curl -sS -m 10 "$STANDIN_URL/_control/stats")
  check_eq "no request reached the recorder for $host" \
    "$(json_get "$log" "sum(1 for r in v['api_log'] if r['headers'].get('host', '').startswith('$host'))")" 0
  check_eq "the one allowed request" "$(json_get "$log" 'v["api_requests"]')" 1
}

# A token the server stopped accepting: `curl` drops it after the 401 (file cache too), as
# `request` does; `token --refresh` replaces it on demand.
t_cli_drops_a_rejected_token() {
  local first second
  cli 0 token
  first=$OUT
  ctl /_control/revoke
  cli 0 curl -s -o /dev/null -w '%{http_code}' /headers
  check_eq "curl: the revoked token gets a 401" "$OUT" 401
  cli 0 token
  second=$OUT
  check "after curl's 401 the next invocation fetches a new token" test "$first" != "$second"
  check_eq "two token requests" "$(stat token_requests)" 2
  cli 0 curl -s -o /dev/null -w '%{http_code}' /headers
  check_eq "curl: the new token works" "$OUT" 200
  # A 401 from another origin drops nothing.
  cli 0 curl -s -o /dev/null -w '%{http_code}' "http://localhost:${STANDIN_URL##*:}/status/401"
  cli 0 token
  check_eq "a 401 from another origin (localhost, not base_url's 127.0.0.1) kept the token" "$OUT" "$second"

  cli 0 token --refresh
  check "token --refresh: a new token" test "$OUT" != "$second"
  local third=$OUT
  cli 0 token
  check_eq "token --refresh: the new one is cached" "$OUT" "$third"
  check_eq "one token request per refresh" "$(stat token_requests)" 3
  CLOUDAUTH_TOKEN_CACHE=memory cli 0 token --refresh
  check_eq "--refresh without a cached token: one request" "$(stat token_requests)" 4
}

# Values holding a password never come from argv; --set-file and the environment do.
t_secret_bearing_settings() {
  cli 2 --set "redis_url=redis://:$ARGV_SECRET@127.0.0.1:6379" token
  check "redis_url with a password: why" contains "$ERR" "user info"
  check "redis_url with a password: how" contains "$ERR" "CLOUDAUTH_REDIS_URL in the environment or --set-file"
  cli 2 --set "proxy=http://user:$ARGV_SECRET@127.0.0.1:3128" token
  check "proxy with user info: refused" contains "$ERR" "CLOUDAUTH_PROXY"
  cli 2 --set "token_param.api_key=$ARGV_SECRET" token
  cli 2 --set "token_url=https://u:$ARGV_SECRET@127.0.0.1/t" token
  cli 2 --set "client_secret=$ARGV_SECRET" token
  cli 0 --set redis_url=redis://127.0.0.1:6379 --set token_cache=memory token
  printf '%s\n' "$STANDIN_URL/connect/token" >"$work/token_url"
  cli 0 --set token_url=https://wrong.invalid/ --set-file "token_url=$work/token_url" token
  check_eq "--set-file: the token URL from the file (its own token request)" "$(stat token_requests)" 2
}

# `| head`: the reader went away; the command ends quietly with status 0.
t_closed_stdout_is_quiet() {
  local status
  set +e
  "$B" request '/big?bytes=1000000' 2>"$work/pipe.err" | head -c 10 >/dev/null
  status=${PIPESTATUS[0]}
  set -e
  check_eq "request | head: status 0" "$status" 0
  check_eq "request | head: nothing on stderr" "$(<"$work/pipe.err")" ""
}

# Mutual TLS through --set and the environment, against tests/support/mtls_server.py (HTTPS on
# 127.0.0.1 recording the client certificates it is shown), with certificates made here.
t_mtls_settings_pass_through() {
  local d=$work/mtls port_file server ports origin i
  mkdir -p "$d"
  ( cd "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
      -days 2 -subj /CN=cli-ca
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
      -out server.csr -subj /CN=127.0.0.1
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
      -days 2 -extfile server.ext
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key \
      -out client.pem -days 2 -subj /CN=cli-client -addext extendedKeyUsage=clientAuth
  ) >/dev/null 2>&1 || { bad "openssl failed"; return; }
  port_file=$d/ports
  # Bounded: it stops when its stdin (the sleep) ends, or after 120 s.
  python3 tests/support/mtls_server.py "$d/server.pem" "$d/server.key" "$d/client.pem" \
    < <(sleep 60) >"$port_file" &
  server=$!
  for i in $(seq 1 100); do [[ -s $port_file ]] && break; sleep 0.1; done
  read -r _ ports _ <"$port_file" || { bad "the mTLS server did not start"; kill $server; return; }
  origin=https://127.0.0.1:$ports
  unset CLOUDAUTH_CLIENT_SECRET
  export CLOUDAUTH_AUTH_METHOD=self_signed_tls_client_auth CLOUDAUTH_CA_FILE=$d/ca.pem
  export CLOUDAUTH_CLIENT_CERT_FILE=$d/client.pem CLOUDAUTH_TOKEN_URL=$origin/token
  cli 0 --set "client_key_file=$d/client.key" --set "base_url=$origin" token
  check "a token for the certificate (env + --set)" grep -Eq '^mtls-1-' "$outs/$n.out"
  cli 0 --set "client_key_file=$d/client.key" --set "base_url=$origin" request /api/cli
  check_eq "the API answered" "$OUT" ok
  cli 101 --set "client_key_file=$d/missing.key" token
  check "a missing key is named" contains "$ERR" "client_key_file: cannot read"
  check "the key's contents never show" lacks "$ERR" "PRIVATE KEY"
  kill $server 2>/dev/null; wait $server 2>/dev/null || true
}

# ---- the runner --------------------------------------------------------------------------

tests=(t_version_and_help t_completions t_usage_errors t_token_formats
       t_ten_invocations_one_token_request t_wrong_secret t_secret_sources t_request
       t_request_resends_after_401 t_library_exit_statuses t_identity_provider_keys t_curl
       t_curl_urls_as_curl_reads_them t_cli_drops_a_rejected_token t_secret_bearing_settings
       t_closed_stdout_is_quiet t_mtls_settings_pass_through)
ran=0
for t in "${tests[@]}"; do
  [[ -z $filter || $t == *"$filter"* ]] || continue
  current=$t
  before=$failed
  ctl /_control/reset
  export XDG_CACHE_HOME=$work/cache-$t
  mkdir -p "$XDG_CACHE_HOME"
  # Each test in a subshell: its exports stay in it; the counters come back through a file.
  (
    standin_env
    unset CLOUDAUTH_TOKEN_CACHE CLOUDAUTH_CLIENT_SECRET_FILE
    "$t"
    echo "$passed $failed $n" >"$work/counts"
  ) || { bad "$t stopped early"; }
  if [[ -f $work/counts ]]; then read -r passed failed n <"$work/counts"; rm -f "$work/counts"; fi
  ran=$((ran + 1))
  if ((failed == before)); then echo "[  OK  ] $t"; else echo "[ FAIL ] $t"; fi
done

# No secret in any output, in any encoding; no token on stderr.
current=secret-scan
secrets=("$SECRET" "$ODD_SECRET" "$WRONG_SECRET" "$ARGV_SECRET")
for s in "${secrets[@]}"; do
  for form in "$s" "$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote_plus(sys.argv[1]))' "$s")" \
              "$(printf '%s' "$s" | base64 -w0)" \
              "$(python3 -c 'import sys,base64,urllib.parse as u; print(base64.b64encode((u.quote_plus(sys.argv[1])+":"+u.quote_plus(sys.argv[2])).encode()).decode())' "$ODD_ID" "$s")"; do
    if grep -rlF -- "$form" "$outs" >/dev/null 2>&1; then
      bad "a secret appears in $(grep -rlF -- "$form" "$outs" | head -3 | tr '\n' ' ')"
    else
      ok
    fi
  done
done
# Tokens are JWT-like (three dot-separated base64url parts): none on stderr.
if grep -lE '[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}' "$outs"/*.err >/dev/null 2>&1; then
  bad "a token appears on stderr: $(grep -lE '[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\.' "$outs"/*.err | head -3 | tr '\n' ' ')"
else
  ok
fi
((ran > 0)) || { echo "run_cli: no test matches '$filter'" >&2; exit 1; }
echo "run_cli: $ran tests, $passed checks passed, $failed failed ($n invocations)"
((failed == 0))
