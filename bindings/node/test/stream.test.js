'use strict';
// Streamed request bodies and responses (Session.request with a stream body or stream: true)
// against the stand-in (tests/standin/server.py).
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { Readable } = require('node:stream');

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

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// Pieces of a known pattern, yielded with a pause so that the body really arrives in parts.
async function* pieces(n, size) {
  for (let i = 0; i < n; i++) {
    yield Buffer.alloc(size, 97 + (i % 26));
    if (i % 4 === 3) await sleep(1);
  }
}
const expected = (n, size) => Buffer.concat([...Array(n).keys()].map((i) => Buffer.alloc(size, 97 + (i % 26))));

async function drain(body) {
  const parts = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

// The request the stand-in logged last (its headers as it received them).
async function lastApiRequest() {
  const log = (await srv.stats()).api_log;
  return log[log.length - 1];
}

test('upload from a stream: chunked, echoed back', async () => {
  const s = open();
  const r = await s.post('/echo', { body: Readable.from(pieces(40, 10_000)), headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, expected(40, 10_000));
  const seen = (await lastApiRequest()).headers;
  assert.equal(seen['transfer-encoding'], 'chunked');
  assert.equal(seen['content-length'], undefined);
});

test('upload with a known length: Content-Length, echoed back; a web ReadableStream and an async generator', async () => {
  const s = open();
  const r = await s.request('PUT', '/echo', { body: pieces(10, 3000), contentLength: 30_000 });
  assert.deepEqual(r.body, expected(10, 3000));
  const seen = (await lastApiRequest()).headers;
  assert.equal(seen['content-length'], '30000');
  assert.equal(seen['transfer-encoding'], undefined);
  const web = await s.post('/echo', { body: ReadableStream.from(pieces(3, 5)) });
  assert.equal(web.text(), 'aaaaabbbbbccccc');
  // A source shorter than its declared length fails the request: the library's message.
  await assert.rejects(s.post('/echo', { body: pieces(1, 10), contentLength: 11 }), (e) => e instanceof cloudauth.InvalidArgumentError && /ended after 10 of the 11 bytes/.test(e.message));
});

test('a factory body is rewound and sent again after a 401 and after a 307: the same bytes echoed', async () => {
  const s = open();
  await s.token();
  await srv.control('revoke', {});
  let calls = 0;
  const body = () => { calls += 1; return Readable.from(pieces(8, 4096)); };
  const r = await s.post('/echo', { body, contentLength: 8 * 4096 });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, expected(8, 4096));
  assert.equal(calls, 2, 'a fresh stream for the resend');
  let st = await srv.stats();
  assert.equal(st.unauthorized, 1);
  assert.equal(st.api_requests, 1);

  calls = 0;
  const to = encodeURIComponent(`${srv.url}/echo`);
  const moved = await s.post(`/redirect?code=307&to=${to}`, { body });
  assert.equal(moved.status, 200);
  assert.deepEqual(moved.body, expected(8, 4096));
  assert.equal(calls, 2);
  st = await srv.stats();
  assert.equal(st.api_requests, 3, 'the 307 hop and the echo');
});

test('a one-shot stream is sent once: the 401 is the answer, and the token is dropped', async () => {
  const s = open();
  const t1 = await s.token();
  await srv.control('revoke', {});
  const r = await s.post('/echo', { body: Readable.from(pieces(4, 1000)) });
  assert.equal(r.status, 401);
  const st = await srv.stats();
  assert.equal(st.unauthorized, 1, 'sent once');
  assert.equal(st.api_requests, 0);
  const t2 = await s.token();
  assert.notEqual(t2, t1, 'the rejected token was dropped');
  assert.equal((await s.post('/echo', { body: Readable.from(['ok']) })).text(), 'ok');
});

test('a streamed response: status and headers first, the body as a Readable, only the final answer after a 401', async () => {
  const s = open();
  await s.token();
  await srv.control('revoke', {});
  const r = await s.get('/big?bytes=3000000', { stream: true });
  assert.ok(r instanceof cloudauth.StreamedResponse);
  assert.equal(r.status, 200);
  assert.equal(r.ok, true);
  assert.equal(r.headers.get('content-length'), '3000000');
  assert.ok(r.body instanceof Readable);
  const all = await drain(r.body);
  assert.equal(all.length, 3_000_000);
  assert.ok(all.every((b) => b === 97));
  assert.equal(s.stats().unauthorizedResends, 1);
  // A bytes body with a streamed response, and a stream body with a streamed response.
  assert.equal((await drain((await s.post('/echo', { body: 'abc', stream: true })).body)).toString(), 'abc');
  assert.equal((await drain((await s.post('/echo', { body: pieces(2, 3), stream: true })).body)).toString(), 'aaabbb');
});

test('back-pressure: a reader that stops holds the download at a bounded size', async () => {
  const s = open();
  const r = await s.get(`/big?bytes=${64 << 20}`, { stream: true });
  r.body.pause();
  await sleep(300);
  const buffered = r.body.readableLength;
  assert.ok(buffered <= 1 << 20, `the paused reader holds ${buffered} bytes`);
  let n = 0;
  for await (const c of r.body) n += c.length;
  assert.equal(n, 64 << 20);
});

test('a 64 MiB streamed download grows the memory of the process by far less than 64 MiB', async () => {
  // In a child with --expose-gc, so that garbage not yet collected does not count.
  const code = `
    const { Session } = require(${JSON.stringify(path.join(__dirname, '..'))});
    (async () => {
      const s = new Session(JSON.parse(process.env.OPTS));
      for await (const c of (await s.get('/big?bytes=1000', { stream: true })).body);
      gc();
      const base = process.memoryUsage().rss;
      let peak = base, n = 0;
      for await (const c of (await s.get('/big?bytes=${64 << 20}', { stream: true })).body) {
        n += c.length;
        if (n % (4 << 20) < c.length) { gc(); peak = Math.max(peak, process.memoryUsage().rss); }
      }
      s.close();
      console.log(JSON.stringify({ n, grew: peak - base }));
    })().catch((e) => { console.log(JSON.stringify({ error: e.message })); });`;
  const out = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '-e', code], { env: { ...process.env, OPTS: JSON.stringify(srv.options) }, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', () => { clearTimeout(kill); resolve(text); });
    child.on('error', reject);
  });
  const m = JSON.parse(out);
  assert.equal(m.n, 64 << 20, out);
  assert.ok(m.grew < 24 << 20, `the resident size grew by ${m.grew} bytes`);
});

test('destroying the body early stops the request; the session works after', async () => {
  const s = open();
  const r = await s.get(`/big?bytes=${60 << 20}`, { stream: true });
  let n = 0;
  for await (const c of r.body) {
    n += c.length;
    if (n > 1 << 20) break; // destroys the stream
  }
  assert.ok(r.body.destroyed);
  const again = await s.get('/echo');
  assert.equal(again.status, 200);
  const small = await s.get('/big?bytes=10', { stream: true });
  assert.equal((await drain(small.body)).toString(), 'aaaaaaaaaa');
});

test('an error in the source stream fails the request with the error as its cause', async () => {
  const s = open();
  const boom = new Error('disk on fire');
  async function* failing() {
    yield Buffer.from('first part');
    throw boom;
  }
  await assert.rejects(s.post('/echo', { body: failing() }), (e) => {
    assert.ok(e instanceof cloudauth.CancelledError);
    assert.match(e.message, /^cloudauth: POST \/echo: the request body failed: disk on fire$/);
    assert.equal(e.cause, boom);
    return true;
  });
  await assert.rejects(s.post('/echo', { body: () => { throw boom; } }), (e) => e.cause === boom);
  await assert.rejects(s.post('/echo', { body: [Buffer.from('x'), 42] }), (e) => e.cause instanceof TypeError && /must yield Buffers/.test(e.message));
  assert.equal((await s.post('/echo', { body: ['still works'] })).text(), 'still works');
});

// The error of a streamed request: its rejection, or its body's error (counting the bytes read).
async function outcome(pending) {
  let got = 0;
  try {
    const r = await pending;
    for await (const c of r.body) got += c.length;
  } catch (e) {
    return { err: e, got };
  }
  return { err: null, got };
}

test('max_response_bytes caps a streamed body: no byte past the cap reaches the reader', async () => {
  const s = open({ maxResponseBytes: 100_000 });
  for (const pending of [
    s.get('/big?bytes=200000', { stream: true }), // Content-Length says it will be too large
    s.post('/echo', { body: pieces(30, 10_000), stream: true }), // the echo of 300 000 bytes
  ]) {
    const { err, got } = await outcome(pending);
    assert.ok(err instanceof cloudauth.TooLargeError, String(err));
    assert.match(err.message, /exceeds the cap of 100000 bytes/);
    assert.ok(got <= 100_000, `${got} bytes reached the reader`);
  }
  const ok = await outcome(s.get('/big?bytes=100000', { stream: true }));
  assert.deepEqual(ok, { err: null, got: 100_000 });
});

test('timeout_ms bounds a streamed exchange: a reader that stalls, a source that stalls', async () => {
  const s = open({ timeoutMs: 400 });
  const r = await s.get(`/big?bytes=${32 << 20}`, { stream: true });
  const started = Date.now();
  const err = await new Promise((resolve) => {
    r.body.once('error', resolve);
    r.body.once('data', () => r.body.pause()); // takes one piece, then stops reading
  });
  assert.ok(err instanceof cloudauth.TimeoutError, String(err));
  assert.match(err.message, /timed out after 400 ms waiting for the reader/);
  assert.ok(Date.now() - started < 2000);

  async function* stalls() {
    yield Buffer.from('a');
    await sleep(1500);
    yield Buffer.from('b');
  }
  await assert.rejects(s.post('/echo', { body: stalls() }), (e) => e instanceof cloudauth.TimeoutError && /waiting for the request body/.test(e.message));
  assert.equal((await s.get('/echo')).status, 200);
});

test('abort: a signal stops a streamed upload and a streamed download', async () => {
  const s = open();
  const ac = new AbortController();
  async function* slow() {
    yield Buffer.from('a');
    ac.abort(new Error('user gave up'));
    await new Promise(() => {}); // never settles (and holds no timer)
  }
  await assert.rejects(s.post('/echo', { body: slow(), signal: ac.signal }), (e) => e instanceof cloudauth.CancelledError && /aborted/.test(e.message));
  const ac2 = new AbortController();
  const r = await s.get(`/big?bytes=${64 << 20}`, { stream: true, signal: ac2.signal });
  const err = await new Promise((resolve) => {
    r.body.once('error', resolve);
    r.body.once('data', () => ac2.abort());
  });
  assert.ok(err instanceof cloudauth.CancelledError, String(err));
  assert.equal((await s.get('/echo')).status, 200);
});

test('concurrent streamed requests, twice (the workers of the first round reused or closed)', async () => {
  const s = open();
  const rounds = async () => {
    const downs = [1, 2, 3, 4].map(async (i) => (await drain((await s.get(`/big?bytes=${i * 100_000}`, { stream: true })).body)).length);
    const ups = [1, 2].map(async (i) => (await s.post('/echo', { body: () => pieces(i, 1000) })).body.length);
    return Promise.all([...downs, ...ups]);
  };
  assert.deepEqual(await rounds(), [100_000, 200_000, 300_000, 400_000, 1000, 2000]);
  assert.deepEqual(await rounds(), [100_000, 200_000, 300_000, 400_000, 1000, 2000]);
});

test('bad stream arguments are clear errors', async () => {
  const s = open();
  await assert.rejects(s.post('/echo', { body: 'x', contentLength: 1 }), /contentLength is for a stream body/);
  await assert.rejects(s.post('/echo', { body: Readable.from(['x']), contentLength: -2 }), /contentLength must be a non-negative integer/);
  await assert.rejects(s.get('/echo', { stream: 'yes' }), /stream must be a boolean/);
  await assert.rejects(s.post('/echo', { body: () => 42 }), (e) => e.cause instanceof TypeError && /factory must return/.test(e.cause.message));
  s.close();
  await assert.rejects(s.get('/echo', { stream: true }), /the session is closed/);
});
