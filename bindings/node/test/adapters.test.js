'use strict';
// The adapters (fetch, undici interceptor, axios, asposewordscloud) and the 401 rule
// (docs/adapters.md), with the real packages, against the stand-in and the hostile server.
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { Readable } = require('node:stream');

const undici = require('undici');
const axiosLib = require('axios');
const words = require('asposewordscloud');
const cloudauth = require('..');
const { Session } = cloudauth;
const { standin, hostile } = require('./helpers');

let srv;
let bad;
let sa; // a session for the stand-in
let sh; // a session for the hostile server's "main" origin
before(async () => {
  [srv, bad] = await Promise.all([standin(), hostile()]);
});
beforeEach(async () => {
  await srv.reset();
  for (const s of [sa, sh]) if (s) s.close();
  sa = new Session(srv.options);
  sh = new Session({ ...bad.options, tokenUrl: `${bad.main}/ok` });
});
after(() => { sa?.close(); sh?.close(); srv.stop(); bad.stop(); });

// Each adapter as a `send(session, method, url, {body, headers}) -> {status, text}`.
const adapters = {
  async fetch(session, method, url, opts = {}) {
    const f = cloudauth.fetch(session);
    const init = { method, headers: opts.headers, body: opts.body };
    if (opts.body instanceof ReadableStream) init.duplex = 'half';
    const r = await f(url, init);
    return { status: r.status, text: await r.text() };
  },
  async undici(session, method, url, opts = {}) {
    const dispatcher = new undici.Agent().compose(cloudauth.undiciInterceptor(session));
    const init = { method, headers: opts.headers, body: opts.body, dispatcher };
    if (opts.body instanceof ReadableStream) init.duplex = 'half';
    try {
      const r = await undici.fetch(url, init);
      return { status: r.status, text: await r.text() };
    } finally {
      await dispatcher.close();
    }
  },
  async 'undici.request'(session, method, url, opts = {}) {
    // cloudauth's interceptor first (innermost): the redirect interceptor above it sends each
    // hop through it, so that every hop is checked on its own.
    const dispatcher = new undici.Agent().compose(cloudauth.undiciInterceptor(session), undici.interceptors.redirect({ maxRedirections: 5 }));
    try {
      const body = opts.body instanceof ReadableStream ? Readable.fromWeb(opts.body) : opts.body;
      const r = await undici.request(url, { method, headers: opts.headers, body, dispatcher });
      return { status: r.statusCode, text: await r.body.text() };
    } finally {
      await dispatcher.close();
    }
  },
  async axios(session, method, url, opts = {}) {
    const instance = axiosLib.create({ validateStatus: () => true, responseType: 'text', transformResponse: (x) => x });
    cloudauth.axiosInterceptors(session, instance);
    const data = opts.body instanceof ReadableStream ? Readable.fromWeb(opts.body) : opts.body;
    const r = await instance.request({ method, url, data, headers: opts.headers });
    return { status: r.status, text: String(r.data) };
  },
};

const tokensSeen = async () => (await srv.stats()).api_log.map((e) => (e.headers.authorization || '').replace(/^Bearer /, ''));

for (const [name, send] of Object.entries(adapters)) {
  test(`${name}: the token goes to the session's origin only`, async () => {
    const t = await sa.token();
    const r = await send(sa, 'GET', `${srv.url}/headers`);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).headers.authorization, `Bearer ${t}`);
    const other = await send(sa, 'GET', `${bad.other}/echo`);
    assert.match(other.text, /auth=none/);
    // A caller's own Authorization header is left alone.
    const own = await send(sa, 'GET', `${srv.url}/public/headers`, { headers: { Authorization: 'Bearer mine' } });
    assert.equal(JSON.parse(own.text).headers.authorization, 'Bearer mine');
  });

  test(`${name}: redirects: no token on a hop that leaves the origin`, async () => {
    await sh.token();
    const away = await send(sh, 'GET', `${bad.main}/to_other?to=echo`);
    assert.equal(away.status, 200);
    assert.match(away.text, /auth=none/, 'the other origin saw no token');
    const same = await send(sh, 'GET', `${bad.main}/to_same?to=echo`);
    assert.match(same.text, /auth=valid/, 'a same-origin hop keeps it');
    // The stand-in redirects to the hostile server: a different origin.
    await sa.token();
    const off = await send(sa, 'GET', `${srv.url}/redirect?to=${encodeURIComponent(`${bad.main}/echo`)}`);
    assert.match(off.text, /auth=none/);
  });

  test(`${name}: a 401 to our token drops exactly that token and resends once`, async () => {
    const t1 = await sa.token();
    await srv.config({ api_script: [{ status: 401, body: '{"error":"invalid_token"}' }] });
    // fetch hands every body to a dispatcher as a stream: through the interceptor under
    // undici's fetch only bodiless requests can be resent (cloudauth.fetch resends bodies).
    const body = name === 'undici' ? null : 'replayable';
    const r = await send(sa, body ? 'POST' : 'GET', `${srv.url}/echo`, { body, headers: { 'Content-Type': 'text/plain' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, body || '');
    const seen = await tokensSeen();
    assert.equal(seen.length, 2);
    assert.equal(seen[0], t1);
    assert.notEqual(seen[1], t1);
    assert.equal(seen[1], sa.cachedToken());
    assert.equal((await srv.stats()).token_requests, 2);
  });

  test(`${name}: a 401 that persists is returned after one resend`, async () => {
    await sa.token();
    await srv.config({ api_script: [{ status: 401 }, { status: 401 }, { status: 401 }] });
    const r = await send(sa, 'GET', `${srv.url}/echo`);
    assert.equal(r.status, 401);
    assert.equal((await srv.stats()).api_requests, 2, 'sent twice, not more');
  });

  test(`${name}: a 401 from another origin (after a redirect) drops no token`, async () => {
    const t = await sh.token();
    const r = await send(sh, 'GET', `${bad.main}/to_other?to=always_401`);
    assert.equal(r.status, 401);
    assert.match(r.text, /auth=none/);
    assert.equal(sh.cachedToken(), t, 'the token survives');
    assert.equal(sh.stats().tokenRequests, 1);
  });

  test(`${name}: a stream body: the 401 drops the token but is not resent`, async () => {
    const t1 = await sa.token();
    await srv.config({ api_script: [{ status: 401 }] });
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('streamed')); c.close(); } });
    const r = await send(sa, 'POST', `${srv.url}/echo`, { body: stream });
    assert.equal(r.status, 401);
    assert.equal((await srv.stats()).api_requests, 1, 'not resent');
    assert.equal((await srv.stats()).token_requests, 1, 'no token fetched for a resend');
    // The rejected token is gone: the next request through the adapter fetches a new one.
    const next = await send(sa, 'GET', `${srv.url}/headers`);
    assert.equal(next.status, 200);
    assert.notEqual(JSON.parse(next.text).headers.authorization, `Bearer ${t1}`);
    assert.equal((await srv.stats()).token_requests, 2);
  });

  test(`${name}: the resend's 401 drops its token too`, async () => {
    await sa.token();
    await srv.config({ api_script: [{ status: 401 }, { status: 401 }] });
    const r = await send(sa, 'GET', `${srv.url}/echo`);
    assert.equal(r.status, 401);
    assert.equal((await srv.stats()).api_requests, 2, 'sent twice, not more');
    assert.equal((await srv.stats()).token_requests, 2);
    assert.equal((await send(sa, 'GET', `${srv.url}/headers`)).status, 200);
    assert.equal((await srv.stats()).token_requests, 3, 'a new token after the resend was refused');
  });
}

// The adapters only add headers: undici and axios send and receive the bodies themselves, so
// streams go through as they would without cloudauth (chunked upload, pieces as they come).
async function* uploadPieces() {
  for (let i = 0; i < 16; i++) {
    yield Buffer.alloc(8192, 97 + i);
    await new Promise((resolve) => { setImmediate(resolve); });
  }
}
const uploaded = Buffer.concat([...Array(16).keys()].map((i) => Buffer.alloc(8192, 97 + i)));
const BIG = 16 << 20;

const streaming = {
  // Each: (session, url, body stream) -> { status, echoed (Buffer) }, and (session, url) -> an async iterable of pieces.
  fetch: {
    up: async (session, url, body) => {
      const r = await cloudauth.fetch(session)(url, { method: 'POST', body: ReadableStream.from(body), duplex: 'half' });
      return { status: r.status, echoed: Buffer.from(await r.arrayBuffer()) };
    },
    down: async (session, url) => (await cloudauth.fetch(session)(url)).body,
  },
  'undici.request': {
    up: async (session, url, body) => {
      const dispatcher = new undici.Agent().compose(cloudauth.undiciInterceptor(session));
      const r = await undici.request(url, { method: 'POST', body: Readable.from(body), dispatcher });
      const echoed = Buffer.from(await r.body.arrayBuffer());
      await dispatcher.close();
      return { status: r.statusCode, echoed };
    },
    down: async (session, url) => {
      const dispatcher = new undici.Agent().compose(cloudauth.undiciInterceptor(session));
      const r = await undici.request(url, { dispatcher });
      r.body.once('close', () => dispatcher.close());
      return r.body;
    },
  },
  axios: {
    up: async (session, url, body) => {
      const instance = axiosLib.create();
      cloudauth.axiosInterceptors(session, instance);
      const r = await instance.post(url, Readable.from(body), { responseType: 'arraybuffer', headers: { 'Content-Type': 'application/octet-stream' } });
      return { status: r.status, echoed: Buffer.from(r.data) };
    },
    down: async (session, url) => {
      const instance = axiosLib.create();
      cloudauth.axiosInterceptors(session, instance);
      return (await instance.get(url, { responseType: 'stream' })).data;
    },
  },
};

for (const [name, io] of Object.entries(streaming)) {
  test(`${name}: a stream body goes out chunked, a response comes in pieces (undici/axios stream them)`, async () => {
    const t = await sa.token();
    const up = await io.up(sa, `${srv.url}/echo`, uploadPieces());
    assert.equal(up.status, 200);
    assert.deepEqual(up.echoed, uploaded);
    const seen = (await srv.stats()).api_log.at(-1).headers;
    assert.equal(seen['transfer-encoding'], 'chunked', 'sent as it was read, not buffered into a Content-Length body');
    assert.equal(seen.authorization, `Bearer ${t}`);
    let n = 0;
    let pieces = 0;
    for await (const c of await io.down(sa, `${srv.url}/big?bytes=${BIG}`)) {
      n += c.length;
      pieces += 1;
    }
    assert.equal(n, BIG);
    assert.ok(pieces > 16, `${pieces} pieces`);
  });
}

test('undici interceptor under fetch: a 401 to a request with a body drops the token, no resend', async () => {
  const t1 = await sa.token();
  await srv.config({ api_script: [{ status: 401 }] });
  const r = await adapters.undici(sa, 'POST', `${srv.url}/echo`, { body: 'x' });
  assert.equal(r.status, 401);
  assert.equal((await srv.stats()).api_requests, 1);
  assert.notEqual(await sa.token(), t1);
});

test('axios: no token in util.inspect of an error', async () => {
  const t = await sa.token();
  const instance = axiosLib.create();
  cloudauth.axiosInterceptors(sa, instance);
  const e = await instance.get(`${srv.url}/status/500`).catch((x) => x);
  assert.equal(e.response.status, 500);
  const text = require('node:util').inspect(e, { depth: 6 });
  assert.ok(!text.includes(t), 'the token shows in util.inspect(error)');
  assert.ok(!JSON.stringify(e.toJSON()).includes(t));
  const e2 = await instance.get('http://127.0.0.1:9/x').catch((x) => x); // another origin: no token at all
  assert.ok(!require('node:util').inspect(e2, { depth: 6 }).includes(t));
});

test('fetch adapter: redirect back to the origin carries the token again; manual and error modes', async () => {
  const f = cloudauth.fetch(sh);
  const back = await f(`${bad.main}/to_other_and_back?to=echo`);
  assert.match(await back.text(), /auth=valid/);
  const manual = await f(`${bad.main}/to_other?to=echo`, { redirect: 'manual' });
  assert.equal(manual.status, 302);
  await assert.rejects(f(`${bad.main}/to_other?to=echo`, { redirect: 'error' }), TypeError);
  const req = await cloudauth.fetch(sa)(new Request(`${srv.url}/echo`, { method: 'POST', body: 'from a Request' }));
  assert.equal(await req.text(), 'from a Request');
});

test('Aspose Words SDK (asposewordscloud): configuration.authentication from cloudauth', async () => {
  const api = new words.WordsApi('demo-client', 'demo-secret', srv.url);
  api.configuration.authentication = cloudauth.asposeAuthentication(sa);
  const info = await api.getInfo(new words.GetInfoRequest());
  assert.equal(info.response.statusCode, 200);
  assert.equal(info.body.name, 'cloudauth stand-in Words');
  const t1 = sa.cachedToken();
  // The SDK's own 401 handling: it re-applies authentication and sends once more.
  await srv.config({ api_script: [{ status: 401 }] });
  const again = await api.getInfo(new words.GetInfoRequest());
  assert.equal(again.body.version, '24.12');
  const seen = await tokensSeen();
  assert.deepEqual(seen.slice(-2, -1), [t1]);
  assert.notEqual(seen.at(-1), t1);
  const st = await srv.stats();
  assert.equal(st.token_requests, 2, 'one token, one after the 401: the SDK never asked for its own');
  assert.ok(!st.token_log.some((e) => e.path.includes('/v4.0/words/connect/token')));
  // Many calls at once share one token.
  await Promise.all(Array.from({ length: 20 }, () => api.getInfo(new words.GetInfoRequest())));
  assert.equal((await srv.stats()).token_requests, 2);
});

test('Aspose Words SDK: a redirect away strips the token and a 401 there drops none', async () => {
  const api = new words.WordsApi('id', 'secret', bad.main);
  const auth = cloudauth.asposeAuthentication(sh);
  const t = await sh.token();
  const opts = { method: 'GET', uri: `${bad.main}/to_other?to=always_401`, headers: {} };
  await auth.applyToRequest(opts, api.configuration);
  assert.equal(opts.headers.Authorization, `Bearer ${t}`);
  const request = require('request');
  const res = await new Promise((resolve, reject) => request(opts, (e, r) => (e ? reject(e) : resolve(r))));
  assert.equal(res.statusCode, 401);
  assert.match(String(res.body), /auth=none/);
  await auth.applyToRequest(opts, api.configuration); // what the SDK does after a 401
  assert.equal(sh.cachedToken(), t, 'not dropped: the 401 came from a request without our token');
  const foreign = { method: 'GET', uri: `${bad.other}/echo`, headers: {} };
  await auth.applyToRequest(foreign, api.configuration);
  assert.equal(foreign.headers.Authorization, undefined);
});

test('Session.fromEnv: every adapter takes the origin from the library (base_url from the environment)', async () => {
  // Tokens come from the stand-in, but <prefix>BASE_URL names the hostile server's main origin:
  // only it gets them. Nothing in the options says so; only the library knows.
  const prefix = 'CLOUDAUTH_ORIGIN_TEST_';
  const vars = { CLIENT_ID: 'demo-client', CLIENT_SECRET: 'demo-secret', TOKEN_URL: `${srv.url}/connect/token`, BASE_URL: `${bad.main}/api/` };
  for (const [k, v] of Object.entries(vars)) process.env[prefix + k] = v;
  const s = Session.fromEnv({}, prefix);
  try {
    assert.equal(s.origin, new URL(bad.main).origin);
    for (const [name, send] of Object.entries(adapters)) {
      // "invalid": a token arrived (the stand-in's, which the hostile server did not issue).
      const there = await send(s, 'GET', `${bad.main}/echo`);
      assert.match(there.text, /auth=invalid/, `${name}: base_url's origin gets the token`);
      const here = await send(s, 'GET', `${srv.url}/public/headers`);
      assert.equal(JSON.parse(here.text).headers.authorization, undefined, `${name}: the token server's origin does not`);
      const away = await send(s, 'GET', `${bad.main}/to_other?to=echo`);
      assert.match(away.text, /auth=none/, `${name}: a hop leaving base_url's origin carries none`);
    }
  } finally {
    s.close();
    for (const k of Object.keys(vars)) delete process.env[prefix + k];
  }
});
