// Node.js rows of make bench (bench/run.sh): session.request vs undici's request and fetch with a
// fixed Authorization header, and the fetch adapter vs fetch with a fixed header, against the
// bench's private nginx (BENCH_BASE, BENCH_TOKEN). Interleaved rounds, medians; prints R lines.
//
//   node bench/node/bench.mjs seq     one request at a time (run.sh pins it to CPU 0 with nginx)
//   node bench/node/bench.mjs conc    64 requests in flight (unpinned)
//
// Baselines tuned as their best users would: undici.request on a keep-alive Agent (its fastest
// API), the body read in full by every client; fetch is Node's global fetch (undici inside).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, '../../bindings/node');
const require = createRequire(path.join(pkg, 'package.json'));
const undici = require('undici');
const cloudauth = require(pkg);

const mode = process.argv[2] || 'seq';
const base = process.env.BENCH_BASE;
const token = process.env.BENCH_TOKEN;
if (!base || !token) throw new Error('BENCH_BASE and BENCH_TOKEN are set by bench/run.sh (start_nginx)');
const quick = process.env.BENCH_QUICK === '1';
const url = `${base}/api/ping`;
const auth = { authorization: `Bearer ${token}` };
const inFlight = 64;
const n = mode === 'seq' ? (quick ? 1000 : 5000) : (quick ? 4000 : 20000);
const rounds = quick ? 2 : 5;

const session = new cloudauth.Session({ clientId: 'bench', clientSecret: 'bench', tokenUrl: `${base}/connect/token`, baseUrl: base });
const agent = new undici.Agent({ keepAliveTimeout: 60_000 });
const authFetch = cloudauth.fetch(session);

function check(status) {
  if (status !== 200) throw new Error(`bench: HTTP ${status}`);
}

const clients = {
  cloudauth: async () => { const r = await session.request('GET', url); check(r.status); },
  undici: async () => {
    const r = await undici.request(url, { headers: auth, dispatcher: agent });
    await r.body.text();
    check(r.statusCode);
  },
  fetch: async () => { const r = await fetch(url, { headers: auth }); await r.text(); check(r.status); },
  fetch_adapter: async () => { const r = await authFetch(url); await r.text(); check(r.status); },
};

async function run(one) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  if (mode === 'seq') {
    for (let i = 0; i < n; i++) await one();
  } else {
    let left = n;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (left-- > 0) await one();
    }));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  return { perS: n / secs, cpuUs: (cpu.user + cpu.system) / n };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
await session.token();
for (const one of Object.values(clients)) for (let i = 0; i < 200; i++) await one(); // warm-up
const results = Object.fromEntries(Object.keys(clients).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, one] of Object.entries(clients)) results[name].push(await run(one));
}
const tag = mode === 'seq' ? 'node.seq' : 'node.conc';
console.log(`R ${tag}.requests ${n}`);
if (mode !== 'seq') console.log(`R ${tag}.in_flight ${inFlight}`);
for (const [name, rs] of Object.entries(results)) {
  console.log(`R ${tag}.${name}.per_s ${median(rs.map((x) => x.perS)).toFixed(0)}`);
  console.log(`R ${tag}.${name}.cpu_us ${median(rs.map((x) => x.cpuUs)).toFixed(1)}`);
}
const m = (k) => median(results[k].map((x) => x.perS));
console.log(`R ${tag}.ratio_vs_undici ${(m('cloudauth') / m('undici')).toFixed(2)}`);
console.log(`R ${tag}.ratio_vs_fetch ${(m('cloudauth') / m('fetch')).toFixed(2)}`);
console.log(`R ${tag}.fetch_adapter_vs_fetch ${(m('fetch_adapter') / m('fetch')).toFixed(2)}`);
if (session.stats().tokenRequests !== 1) throw new Error('bench: more than one token request');
session.close();
await agent.close();
