#!/usr/bin/env bash
# The Node.js binding (bindings/node), tested as an npm package: `npm ci` from its committed
# package-lock.json (koffi, and for the tests undici, axios, asposewordscloud, typescript), the
# library just built copied to prebuilds/linux-x64/ (where the package loads it from;
# CLOUDAUTH_LIBRARY is unset), `tsc --noEmit` on index.d.ts and the TypeScript examples, the
# `node --test` suite (stand-in, hostile server and a private nginx, all on 127.0.0.1), the
# examples against the stand-in, and `npm pack` holding what a user would install.
#
# Needs: node >= 20.18 and npm, python3, nginx (nginx-light; scripts/ensure-deps.sh installs
# it), the release build (make build). Extra arguments go to node --test, e.g.
#   tests/run/node.sh --test-name-pattern=axios
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
pkg=$ROOT/bindings/node
unset CLOUDAUTH_LIBRARY

need_node=20.18.1 # undici 7
have_node=$(node --version 2>/dev/null | sed 's/^v//') || true
if [[ -z $have_node || $(printf '%s\n%s\n' "$need_node" "$have_node" | sort -V | head -1) != "$need_node" ]]; then
  echo "run_node: the Node.js binding's tests need Node.js $need_node or newer (found: ${have_node:-none})" >&2
  exit 1
fi
LIB=$ROOT/target/release/libcloudauth.so
[[ -f $LIB ]] || { echo "run_node: $LIB is missing: run make build" >&2; exit 1; }

# npm ci again whenever the lock file changed since the last install.
if [[ ! -f $pkg/node_modules/.package-lock.json || $pkg/package-lock.json -nt $pkg/node_modules/.package-lock.json ]]; then
  echo "run_node: npm ci (bindings/node)"
  (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The package bundles the library per platform; the copy is made here, not committed (7 MB).
mkdir -p "$pkg/prebuilds/linux-x64"
cp "$LIB" "$pkg/prebuilds/linux-x64/libcloudauth.so"

echo "run_node: tsc --noEmit (index.d.ts, examples/node/*.ts)"
(cd "$pkg" && node_modules/.bin/tsc --noEmit -p tsconfig.json)
# The examples import 'cloudauth' as users do: node_modules links to the package.
ex=$ROOT/examples/node
mkdir -p "$ex/node_modules"
ln -sfn ../../../bindings/node "$ex/node_modules/cloudauth"
ln -sfn ../../../bindings/node/node_modules/undici "$ex/node_modules/undici"
ln -sfn ../../../bindings/node/node_modules/axios "$ex/node_modules/axios"
rm -rf "$ex/build"
(cd "$ex" && "$pkg/node_modules/.bin/tsc" -p tsconfig.json)

echo "run_node: npm pack --dry-run holds lib/, index.d.ts and prebuilds/linux-x64/libcloudauth.so"
packed=$(cd "$pkg" && npm pack --dry-run --json 2>/dev/null)
for f in lib/index.js lib/index.mjs lib/ffi.js index.d.ts prebuilds/linux-x64/libcloudauth.so README.md; do
  grep -q "\"path\": \"$f\"" <<<"$packed" || { echo "run_node: npm pack would leave out $f" >&2; exit 1; }
done
if grep -q '"path": "test/' <<<"$packed"; then echo "run_node: npm pack would ship the tests" >&2; exit 1; fi

# Installed as a user installs it: the packed tarball into a fresh project (koffi from npm's
# cache), then a token from the stand-in with the library the package bundles.
app=$(mktemp -d)
(cd "$pkg" && npm pack --silent --pack-destination "$app" >/dev/null)
(cd "$app" && echo '{"private":true}' >package.json &&
  npm install --offline --no-audit --no-fund --silent ./cloudauth-*.tgz)
echo "run_node: the installed package against the stand-in"
(cd "$app" && "$ROOT/tests/standin/with_server.sh" node -e "
  const ca = require('cloudauth');
  const want = require('path').join(process.cwd(), 'node_modules/cloudauth/prebuilds/linux-x64/libcloudauth.so');
  if (ca.libraryPath() !== want) throw new Error('loaded ' + ca.libraryPath() + ', not ' + want);
  const s = new ca.Session({ clientId: 'demo-client', clientSecret: 'demo-secret',
    tokenUrl: process.env.STANDIN_URL + '/connect/token', baseUrl: process.env.STANDIN_URL });
  s.get('/echo').then((r) => { if (r.status !== 200) throw new Error('HTTP ' + r.status);
    console.log('run_node: installed cloudauth', ca.libraryVersion(), 'answered', r.status); s.close(); });")
rm -rf "$app"

# A private nginx as token endpoint and Bearer-checking API (bench/lib.sh's, on a free port).
WORK=$(mktemp -d)
BENCH=$ROOT/bench
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
[[ -x /usr/sbin/nginx ]] || { echo "run_node: nginx is missing: run scripts/ensure-deps.sh" >&2; exit 1; }
trap 'stop_nginx; rm -rf "$WORK"' EXIT
start_nginx 2>/dev/null
export NGINX_BASE=$BENCH_BASE

echo "run_node: examples/node against the stand-in"
tests/standin/with_server.sh node "$ex/build/ocr_demo.js"
tests/standin/with_server.sh node "$ex/ocr_demo.mjs"
tests/standin/with_server.sh node "$ex/build/adapters.js"

echo "run_node: node --test bindings/node/test"
cd "$pkg"
timeout 600 node --test --test-reporter=dot "$@" test/
# The other queue mode (CLOUDAUTH_NODE_QUEUE=threads: the library's threads do the I/O).
echo "run_node: node --test test/session.test.js with CLOUDAUTH_NODE_QUEUE=threads"
CLOUDAUTH_NODE_QUEUE=threads timeout 300 node --test --test-reporter=dot "$@" test/session.test.js
check_nginx_log
