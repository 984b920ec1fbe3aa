'use strict';
// Every method of Session against the stand-in (tests/standin/server.py).
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const util = require('node:util');

const cloudauth = require('..');
const { Session } = cloudauth;
const { standin } = require('./helpers');

let srv;
const sessions = [];
function open(extra = {}) {
  const s = new Session({ ...srv.options, ...extra });
  sessions.push(s);
  return s;
}

before(async () => { srv = await standin(); });
beforeEach(async () => { await srv.reset(); });
after(() => { for (const s of sessions) s.close(); srv.stop(); });

test('the library is the bundled copy (CLOUDAUTH_LIBRARY unset) and has a version', () => {
  assert.match(cloudauth.libraryVersion(), /^\d+\.\d+\.\d+/);
  if (!process.env.CLOUDAUTH_LIBRARY) assert.match(cloudauth.libraryPath(), /prebuilds\/linux-x64\/libcloudauth\.so$/);
});

test('token(), cachedToken(), stats()', async () => {
  const s = open();
  assert.equal(s.cachedToken(), null, 'no token yet: null, and a fetch starts');
  const t = await s.token();
  assert.match(t, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.equal(s.cachedToken(), t);
  assert.equal(await s.token(), t);
  const st = s.stats();
  assert.equal(st.tokenRequests, 1);
  assert.ok(st.tokenExpiresInMs > 3_500_000);
  assert.equal((await srv.stats()).token_requests, 1);
});

test('request(): methods, headers, binary body, Response', async () => {
  const s = open();
  const bytes = Buffer.from([0, 1, 2, 255, 13, 10, 0]);
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'PURGE']) {
    const r = await s.request(method, '/echo?a=1', { headers: { 'X-One': 'v1', 'Content-Type': 'application/octet-stream' }, body: method === 'GET' ? null : bytes });
    assert.equal(r.status, 200);
    assert.equal(r.ok, true);
    assert.equal(r.headers.get('x-echo-method'), method);
    assert.equal(r.headers.get('x-echo-query'), 'a=1');
    assert.ok(Buffer.isBuffer(r.body));
    assert.deepEqual(r.body, method === 'GET' ? Buffer.alloc(0) : bytes);
  }
  const h = await s.request('GET', `${srv.url}/headers`, { headers: new Headers({ 'X-Two': 'v2' }) });
  const seen = h.json().headers;
  assert.equal(seen['x-two'], 'v2');
  assert.match(seen.authorization, /^Bearer /);
  const r404 = await s.get('/status/404');
  assert.equal(r404.status, 404);
  assert.deepEqual(r404.json(), { status: 404 });
  const post = await s.post('/echo', { body: 'text body', headers: [['X-Three', '3']] });
  assert.equal(post.text(), 'text body');
  assert.equal(s.stats().apiRequests, 9);
});

test('a 401 from the API: the library drops the token and resends once', async () => {
  const s = open();
  await s.token();
  await srv.control('revoke', {});
  const r = await s.get('/echo');
  assert.equal(r.status, 200);
  assert.equal(s.stats().unauthorizedResends, 1);
});

test('invalidate() and invalidateToken()', async () => {
  const s = open();
  const t1 = await s.token();
  await s.invalidateToken('not-the-current-token');
  assert.equal(await s.token(), t1, 'another token is not dropped');
  await s.invalidateToken(t1);
  const t2 = await s.token();
  assert.notEqual(t2, t1);
  await s.invalidate();
  assert.notEqual(await s.token(), t2);
  assert.equal((await srv.stats()).token_requests, 3);
});

test('checkUrl() and setCredentials()', async () => {
  const s = open();
  assert.equal(s.checkUrl(`${srv.url}/x`), true);
  assert.equal(s.checkUrl('http://example.com/x'), false);
  await srv.config({ clients: { 'new-id': 'new-secret' } });
  s.setCredentials('new-id', 'new-secret');
  await s.invalidate();
  await s.token();
  assert.equal((await srv.stats()).last_token_request.form.client_id, 'new-id');
});

test('1,000 concurrent requests on one session cause one token request', async () => {
  const s = open();
  const all = await Promise.all(Array.from({ length: 1000 }, (_, i) => s.get(`/echo?i=${i}`)));
  assert.ok(all.every((r, i) => r.status === 200 && r.headers.get('x-echo-query') === `i=${i}`));
  assert.equal((await srv.stats()).token_requests, 1);
  assert.equal(s.stats().tokenRequests, 1);
});

test('the event loop keeps ticking while a token fetch takes 1 s', async () => {
  await srv.config({ token_delay_ms: 1000 });
  const s = open();
  const ticks = [];
  const start = performance.now();
  const timer = setInterval(() => ticks.push(performance.now() - start), 20);
  const t = await s.token();
  clearInterval(timer);
  const took = performance.now() - start;
  assert.ok(t && took >= 950, `the fetch took ${took} ms`);
  // A blocked loop would show one late tick; a free one ticks about every 20 ms.
  assert.ok(ticks.length >= 20, `only ${ticks.length} ticks in ${took} ms`);
  const gaps = ticks.slice(1).map((v, i) => v - ticks[i]);
  assert.ok(Math.max(...gaps) < 400, `a tick came ${Math.max(...gaps)} ms late`);
});

test('an AbortSignal cancels a request and a token fetch', async () => {
  const s = open();
  await s.token();
  const ac = new AbortController();
  const started = performance.now();
  const p = s.get('/delay/5000', { signal: ac.signal });
  setTimeout(() => ac.abort(new Error('stop')), 100);
  await assert.rejects(p, (e) => e instanceof cloudauth.CancelledError && e.code === 'CLOUDAUTH_ERR_CANCELLED' && e.cause.message === 'stop');
  assert.ok(performance.now() - started < 2000);
  await assert.rejects(s.get('/echo', { signal: AbortSignal.abort() }), cloudauth.CancelledError);
  await srv.config({ token_delay_ms: 3000 });
  await s.invalidate();
  const ac2 = new AbortController();
  const tp = s.token({ signal: ac2.signal });
  setTimeout(() => ac2.abort(), 50);
  await assert.rejects(tp, cloudauth.CancelledError);
});

test('events: token_fetched, unauthorized, token_fetch_failed', async () => {
  const s = open({ maxRetries: 0 });
  const events = [];
  s.on('event', (e) => events.push(e));
  await s.token();
  await srv.control('revoke', {});
  await s.get('/echo');
  await srv.config({ token_default: { status: 503 } });
  await s.invalidate();
  await assert.rejects(s.token(), cloudauth.TokenEndpointError);
  await new Promise((r) => setTimeout(r, 100));
  const kinds = events.map((e) => e.kind);
  assert.ok(kinds.includes('token_fetched'), kinds.join());
  assert.ok(kinds.includes('unauthorized'), kinds.join());
  const failed = events.find((e) => e.kind === 'token_fetch_failed');
  assert.ok(failed, kinds.join());
  assert.equal(failed.result, 'CLOUDAUTH_ERR_TOKEN_ENDPOINT');
  assert.equal(failed.httpStatus, 503);
  assert.equal(events[0].reason, 'first_use');
});

test('events of a background refresh arrive with nothing in flight', async () => {
  await srv.config({ token_expires_in: 3 });
  // eager: the session refreshes on time by itself, about 1 s after the first token.
  const s = open({ refreshSkewS: 2, refreshMode: 'eager' });
  const events = [];
  s.on('event', (e) => events.push(e));
  const t1 = await s.token();
  // Nothing is in flight now: the event comes through the unref'd timer.
  const deadline = Date.now() + 5000;
  while (!events.some((e) => e.reason === 'refresh_ahead') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const refresh = events.find((e) => e.reason === 'refresh_ahead');
  assert.ok(refresh, JSON.stringify(events));
  assert.equal(refresh.kind, 'token_fetched');
  assert.notEqual(s.cachedToken(), t1);
  assert.equal(s.stats().backgroundRefreshes, 1);
});

test('errors: one class per code, the library message, a code', async () => {
  const s = open({ clientSecret: 'wrong-secret-value' });
  const e = await s.token().catch((x) => x);
  assert.ok(e instanceof cloudauth.AuthRejectedError && e instanceof cloudauth.CloudAuthError && e instanceof Error);
  assert.equal(e.code, 'CLOUDAUTH_ERR_AUTH_REJECTED');
  assert.equal(e.result, 6);
  assert.match(e.message, /401/);
  assert.ok(!e.message.includes('wrong-secret-value'));
  const insecure = await open().get('http://example.com/x').catch((x) => x);
  assert.ok(insecure instanceof cloudauth.InsecureUrlError, String(insecure));
  const big = open({ maxResponseBytes: 1000 });
  await assert.rejects(big.get('/big?bytes=5000'), cloudauth.TooLargeError);
  const dead = open({ tokenUrl: 'http://127.0.0.1:9/connect/token', maxRetries: 0 });
  await assert.rejects(dead.token(), cloudauth.NetworkError);
  const slow = open({ timeoutMs: 300 });
  await assert.rejects(slow.get('/delay/3000'), cloudauth.TimeoutError);
});

test('no token in messages or util.inspect', async () => {
  const s = open();
  const t = await s.token();
  const r = await s.get('/headers');
  for (const text of [util.inspect(s, { depth: 5, showHidden: true }), util.inspect(r, { depth: 5 }), JSON.stringify(s.stats())]) {
    assert.ok(!text.includes(t), text);
    assert.ok(!text.includes('demo-secret'), text);
  }
  const e = await s.get('http://example.com/').catch((x) => x);
  assert.ok(!util.inspect(e).includes(t));
});

test('close(): idempotent, Symbol.dispose, calls in flight end cancelled, later calls fail', async () => {
  const s = new Session(srv.options);
  await s.token();
  const inFlight = [s.get('/delay/3000'), s.get('/delay/3000'), s.token()];
  const started = performance.now();
  await new Promise((r) => setTimeout(r, 100));
  s.close();
  s.close();
  const results = await Promise.allSettled(inFlight);
  assert.equal(results[2].status, 'fulfilled', 'the token was cached: finished before close');
  for (const r of results.slice(0, 2)) {
    assert.equal(r.status, 'rejected');
    assert.ok(r.reason instanceof cloudauth.CancelledError, String(r.reason));
  }
  assert.ok(performance.now() - started < 2000);
  assert.equal(s.closed, true);
  await assert.rejects(s.token(), (e) => e instanceof cloudauth.InvalidArgumentError && /closed/.test(e.message));
  await assert.rejects(s.get('/echo'), /closed/);
  await assert.rejects(s.invalidate(), /closed/);
  assert.throws(() => s.cachedToken(), /closed/);
  assert.throws(() => s.stats(), /closed/);
  if (typeof Symbol.dispose === 'symbol') {
    const d = new Session(srv.options);
    d[Symbol.dispose]();
    assert.equal(d.closed, true);
  }
});

test('Session.fromEnv(): CLOUDAUTH_* variables, options override them', async () => {
  const saved = { ...process.env };
  try {
    process.env.CLOUDAUTH_CLIENT_ID = 'demo-client';
    process.env.CLOUDAUTH_CLIENT_SECRET = 'demo-secret';
    process.env.CLOUDAUTH_TOKEN_URL = `${srv.url}/connect/token`;
    process.env.CLOUDAUTH_BASE_URL = srv.url;
    process.env.CLOUDAUTH_TIMEOUT_MS = '5000';
    const s = Session.fromEnv();
    sessions.push(s);
    assert.equal(s.baseUrl, srv.url);
    assert.equal((await s.get('/echo')).status, 200);
    process.env.CLOUDAUTH_TIMEOUT_MS = 'soon';
    assert.throws(() => Session.fromEnv(), (e) => e instanceof cloudauth.InvalidArgumentError && /CLOUDAUTH_TIMEOUT_MS/.test(e.message));
    process.env.CLOUDAUTH_TIMEOUT_MS = '5000';
    const p = Session.fromEnv({ clientSecret: 'other' });
    sessions.push(p);
    await assert.rejects(p.token(), cloudauth.AuthRejectedError);
  } finally {
    for (const k of Object.keys(process.env)) if (k.startsWith('CLOUDAUTH_') && !(k in saved)) delete process.env[k];
  }
});
