'use strict';
// Bad input, loading, worker_threads, process exit, ESM, nginx and the hostile server.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync, spawn } = require('node:child_process');
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const cloudauth = require('..');
const { Session } = cloudauth;
const { standin, hostile } = require('./helpers');

const PKG = path.resolve(__dirname, '..');
let srv;
let bad;
before(async () => { [srv, bad] = await Promise.all([standin(), hostile()]); });
after(() => { srv.stop(); bad.stop(); });

test('bad options: TypeError or InvalidArgumentError naming the option, never a crash', () => {
  const o = () => ({ clientId: 'demo-client', clientSecret: 'demo-secret' });
  assert.throws(() => new Session(), TypeError);
  assert.throws(() => new Session('x'), TypeError);
  assert.throws(() => new Session([]), TypeError);
  assert.throws(() => new Session({ ...o(), timeoutMs: {} }), (e) => e instanceof TypeError && /timeoutMs/.test(e.message));
  assert.throws(() => new Session({ ...o(), timeoutMs: -1 }), (e) => e instanceof TypeError && /timeoutMs/.test(e.message));
  assert.throws(() => new Session({ ...o(), timeoutMs: 1.5 }), TypeError);
  assert.throws(() => new Session({ ...o(), tokenUrll: 'x' }), (e) => e instanceof cloudauth.InvalidArgumentError && /tokenUrll/.test(e.message));
  assert.throws(() => new Session({ ...o(), timeoutMs: 'soon' }), (e) => e instanceof cloudauth.InvalidArgumentError && /timeoutMs/.test(e.message) && /timeout_ms/.test(e.message));
  assert.throws(() => new Session({ ...o(), settings: { no_such_key: '1' } }), (e) => e instanceof cloudauth.InvalidArgumentError && /no_such_key/.test(e.message));
  assert.throws(() => new Session({ ...o(), settings: 5 }), TypeError);
  assert.throws(() => new Session({ ...o(), tokenParams: { x: {} } }), TypeError);
  assert.throws(() => new Session({ ...o(), clientId: 'a\0b' }), cloudauth.InvalidArgumentError);
  assert.throws(() => new Session({ clientId: 'only-id' }), (e) => e instanceof cloudauth.InvalidArgumentError && /client_secret/.test(e.message));
  assert.throws(() => new Session({ ...o(), authMethod: 'telepathy' }), cloudauth.InvalidArgumentError);
  assert.throws(() => new Session({ ...o(), tokenUrl: 'http://remote.example/token' }), cloudauth.InsecureUrlError);
  assert.throws(() => new Session({ ...o(), clientSecret: 'super-secret-x', timeoutMs: 'x' }), (e) => !e.message.includes('super-secret-x'));
  // Every documented option is accepted.
  const s = new Session({ ...o(), tokenUrl: `${srv.url}/connect/token`, baseUrl: srv.url, scope: 'a b', authMethod: 'client_secret_basic',
    timeoutMs: 5000, connectTimeoutMs: 1000, refreshSkewS: 30, maxRetries: 1, maxRetryWaitMs: 100, defaultExpiresInS: 60,
    maxResponseBytes: 1 << 20, userAgent: 'ua/1', proxy: 'none', allowInsecureHttp: false, refreshMode: 'inline',
    tokenCache: 'memory', audience: 'aud', resource: ['https://r1', 'https://r2'], tokenParams: { extra: 'x' }, settings: { max_retries: 2 } });
  s.close();
});

test('bad call arguments: rejected with TypeError or InvalidArgumentError', async () => {
  const s = new Session(srv.options);
  try {
    await assert.rejects(s.request(), TypeError);
    await assert.rejects(s.request('GET'), TypeError);
    await assert.rejects(s.request(5, '/echo'), TypeError);
    await assert.rejects(s.request('GET', '/echo', { body: {} }), TypeError);
    // A stream is a body too (sent once, read as it goes: test/stream.test.js).
    const fs = require('node:fs');
    assert.equal((await s.request('POST', '/echo', { body: fs.createReadStream(__filename) })).text(), fs.readFileSync(__filename, 'utf8'));
    await assert.rejects(s.request('GET', '/echo', { headers: 5 }), TypeError);
    await assert.rejects(s.request('GET', '/echo', { headers: { a: {} } }), TypeError);
    await assert.rejects(s.request('GET', '/echo', { headers: { 'X-A': 'b\r\nX-Evil: 1' } }), cloudauth.InvalidArgumentError);
    await assert.rejects(s.request('GET', '/echo', { headers: { Authorization: 'Bearer mine' } }), cloudauth.InvalidArgumentError);
    await assert.rejects(s.request('GET', '/echo', { hedaers: {} }), (e) => e instanceof TypeError && /hedaers/.test(e.message));
    await assert.rejects(s.request('GET', '/echo', { signal: 'no' }), TypeError);
    await assert.rejects(s.request('GET', 'ftp://127.0.0.1/x'), cloudauth.CloudAuthError);
    await assert.rejects(s.invalidateToken(5), TypeError);
    assert.throws(() => s.checkUrl(5), TypeError);
    assert.throws(() => s.setCredentials('', 'x'), cloudauth.InvalidArgumentError);
    assert.equal((await s.request('GET', new URL(`${srv.url}/echo`))).status, 200);
  } finally {
    s.close();
  }
});

test('a load failure says where it looked', () => {
  const r = spawnSync(process.execPath, ['-e', "try { new (require('.').Session)({}) } catch (e) { console.log(e.code + ' ' + e.message); process.exit(3) }"],
    { cwd: PKG, env: { ...process.env, CLOUDAUTH_LIBRARY: '/nonexistent/libcloudauth.so' }, encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stdout, /CLOUDAUTH_LIBRARY_NOT_FOUND .*\/nonexistent\/libcloudauth\.so \(CLOUDAUTH_LIBRARY\): not found/);
  const r2 = spawnSync(process.execPath, ['-e', "try { new (require('.').Session)({}) } catch (e) { console.log(e.message); process.exit(3) }"],
    { cwd: PKG, env: { ...process.env, CLOUDAUTH_LIBRARY: __filename }, encoding: 'utf8' });
  assert.equal(r2.status, 3);
  assert.match(r2.stdout, /runtime\.test\.js \(CLOUDAUTH_LIBRARY\): /);
});

test('ESM entry point: named and default exports are the CommonJS ones', async () => {
  const esm = await import('../lib/index.mjs');
  assert.equal(esm.Session, Session);
  assert.equal(esm.default.fetch, cloudauth.fetch);
  assert.equal(esm.TimeoutError, cloudauth.TimeoutError);
});

test('worker_threads: each with its own session, and one session shared by all', async () => {
  const owner = new Session(srv.options);
  await owner.token();
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Session } = require(${JSON.stringify(PKG)});
    (async () => {
      const own = new Session(workerData.options);
      const shared = Session.fromShared(workerData.handle);
      const rs = await Promise.all([own.get('/echo'), shared.get('/echo'), shared.token()]);
      const out = { statuses: rs.slice(0, 2).map((r) => r.status), sharedToken: rs[2] };
      own.close();
      shared.close();
      parentPort.postMessage(out);
    })().catch((e) => parentPort.postMessage({ error: e.message }));`;
  const before = (await srv.stats()).token_requests;
  const handles = [0, 1, 2].map(() => owner.share());
  const results = await Promise.all(handles.map((handle) => new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { options: srv.options, handle } });
    w.once('message', resolve);
    w.once('error', reject);
  })));
  const token = owner.cachedToken();
  for (const r of results) {
    assert.deepEqual(r.statuses, [200, 200], JSON.stringify(r));
    assert.equal(r.sharedToken, token, 'the shared session has one token');
  }
  assert.equal((await srv.stats()).token_requests - before, 3, 'one token per own session, none for the shared one');
  assert.throws(() => Session.fromShared(handles[0]), /adopted already/);
  owner.close();
  assert.throws(() => owner.share(), /closed/);
});

function runChild(code, ms) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['-e', code], { cwd: PKG, env: { ...process.env, SRV: srv.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const kill = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code, signal) => { clearTimeout(kill); resolve({ code, signal, out, took: Date.now() - started }); });
  });
}

test('a process exits promptly, with code 0, with sessions and operations open', async () => {
  const prelude = `const { Session } = require('.');
    const o = { clientId: 'demo-client', clientSecret: 'demo-secret', tokenUrl: process.env.SRV + '/connect/token', baseUrl: process.env.SRV };`;
  // process.exit() with requests and a token fetch in flight.
  const a = await runChild(`${prelude}
    const s = new Session(o); const t = new Session({ ...o, settings: {} });
    for (let i = 0; i < 20; i++) s.get('/delay/20000').catch(() => {});
    t.token().catch(() => {}); s.on('event', () => {});
    setTimeout(() => process.exit(0), 300);`, 10000);
  assert.equal(a.code, 0, a.out);
  assert.ok(a.took < 5000, `took ${a.took} ms`);
  // The script ends with sessions open (listening for events) and nothing in flight.
  const b = await runChild(`${prelude}
    const s = new Session(o); s.on('event', () => {});
    s.get('/echo').then((r) => console.log('status', r.status));`, 10000);
  assert.equal(b.code, 0, b.out);
  assert.match(b.out, /status 200/);
  assert.ok(b.took < 5000, `took ${b.took} ms`);
  // An uncaught exception with work in flight: the usual exit code 1, promptly, no crash.
  const c = await runChild(`${prelude}
    const s = new Session(o); for (let i = 0; i < 5; i++) s.get('/delay/20000').catch(() => {});
    setTimeout(() => { throw new Error('boom') }, 200);`, 10000);
  assert.equal(c.code, 1, c.out);
  assert.equal(c.signal, null);
  assert.ok(c.took < 5000, `took ${c.took} ms`);
});

test('nginx: requests to a Bearer-checking nginx', async () => {
  const base = process.env.NGINX_BASE;
  assert.ok(base, 'NGINX_BASE is not set: run tests/run/node.sh, which starts nginx');
  const s = new Session({ clientId: 'c', clientSecret: 's', tokenUrl: `${base}/connect/token`, baseUrl: base });
  try {
    const rs = await Promise.all(Array.from({ length: 200 }, () => s.get('/api/ping')));
    assert.ok(rs.every((r) => r.status === 200 && r.json().ok === true));
    assert.equal((await s.get('/nope')).status, 404);
    assert.equal(s.stats().tokenRequests, 1);
  } finally {
    s.close();
  }
});

test('the hostile server: bad token answers, hangs, resets, redirects', async () => {
  const open = (tokenPath, extra = {}) => new Session({ ...bad.options, tokenUrl: `${bad.main}/${tokenPath}`, maxRetries: 0, timeoutMs: 1500, ...extra });
  const cases = [
    ['not_json', cloudauth.BadTokenResponseError], ['no_access_token', cloudauth.BadTokenResponseError],
    ['token_newline', cloudauth.BadTokenResponseError], ['type_mac', cloudauth.BadTokenResponseError],
    ['status_401_invalid_client', cloudauth.AuthRejectedError], ['status_503', cloudauth.TokenEndpointError],
    ['hang', cloudauth.TimeoutError], ['reset', cloudauth.NetworkError], ['garbage', cloudauth.NetworkError],
    ['big_body', cloudauth.TooLargeError], ['echo_400_all_desc', cloudauth.AuthRejectedError],
  ];
  await Promise.all(cases.map(async ([what, cls]) => {
    const s = open(what);
    try {
      const e = await s.token().then(() => null, (x) => x);
      assert.ok(e instanceof cls, `${what}: ${e}`);
      assert.ok(!e.message.includes('hostile-secret-value'), `${what}: ${e.message}`);
      assert.ok(e.message.length < 600 && !e.message.includes('\n'), `${what}: ${e.message}`);
    } finally {
      s.close();
    }
  }));
  const s = open('ok');
  try {
    const t = await s.token();
    const away = await s.get(`${bad.main}/to_other?to=echo`);
    assert.equal(away.status, 200);
    assert.match(away.text(), /auth=none/, 'the token does not follow a redirect to another port');
    const e = await s.get(`${bad.main}/token_in_401`).then((r) => r.text());
    assert.match(e, /your token/);
    const fail = await s.get(`${bad.main}/to_remote_http`).catch((x) => x);
    assert.ok(fail instanceof cloudauth.CloudAuthError && !fail.message.includes(t), String(fail));
  } finally {
    s.close();
  }
});
