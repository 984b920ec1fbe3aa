'use strict';
// Streamed bodies: a request body read from a stream while it is sent, a response body handed
// to a Readable piece by piece (include/cloudauth.h: cloudauth_session_request_stream and
// cloudauth_session_request_stream_body).
//
// Why a worker thread: those calls block their thread and call read/write back on it. Made
// with koffi's .async, the callbacks would be queued to the main thread, and each must
// return at once: a read could not wait for the next piece of a stream, nor a write for a
// slow reader (no back-pressure). So each streamed request runs synchronously on a
// worker_threads thread (stream_worker.js), whose callbacks may block: they post to the main
// thread and Atomics.wait on a shared control array (stream_control.js) for its answer. The
// main thread never blocks; it answers from its streams and gives credit back as the reader
// takes pieces. Idle workers are kept (unref'd) for the next request.

const path = require('node:path');
const { Readable } = require('node:stream');
const { Worker, MessageChannel } = require('node:worker_threads');

const ffi = require('./ffi');
const { SIG, CREDIT, CANCEL, SIZE } = require('./stream_control');

const IDLE_WORKERS = 2;
const idle = [];

function spawn() {
  const w = new Worker(path.join(__dirname, 'stream_worker.js'), { workerData: { library: ffi.libraryPath } });
  w.job = null;
  // A worker that dies (it should not) fails its job; it is never reused.
  w.on('error', (e) => w.job && w.job.done({ t: 'done', rc: 10, error: `the streaming thread failed: ${e.message}` }));
  w.on('exit', () => {
    w.dead = true;
    const i = idle.indexOf(w);
    if (i >= 0) idle.splice(i, 1);
    if (w.job) w.job.done({ t: 'done', rc: 10, error: 'the streaming thread exited' });
  });
  w.on('message', (m) => w.job && w.job.message(m));
  return w;
}

function acquire() {
  const w = idle.pop() || spawn();
  w.ref();
  return w;
}

function release(w) {
  w.job = null;
  if (w.dead) return;
  if (idle.length < IDLE_WORKERS) {
    w.unref();
    idle.push(w);
  } else {
    w.postMessage({ close: true }); // it frees its callbacks and ends
  }
}

// ---- request bodies ---------------------------------------------------------------------------

function isBytes(v) {
  return typeof v === 'string' || ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
}

/** A stream body: a Readable, an async iterable, a web ReadableStream, or a function returning one. */
function isStreamBody(body) {
  if (body == null || isBytes(body) || body instanceof URLSearchParams) return false;
  return typeof body === 'function' || typeof body[Symbol.asyncIterator] === 'function' ||
    typeof body.getReader === 'function' || (typeof body[Symbol.iterator] === 'function' && typeof body !== 'string');
}

function iterate(body) {
  if (body != null && typeof body[Symbol.asyncIterator] === 'function') return body[Symbol.asyncIterator]();
  if (body != null && typeof body.getReader === 'function') {
    const reader = body.getReader();
    return { next: () => reader.read(), return: async () => { await reader.cancel(); return { done: true }; } };
  }
  if (body != null && !isBytes(body) && typeof body[Symbol.iterator] === 'function') return body[Symbol.iterator]();
  throw new TypeError(`cloudauth: a body factory must return a Readable, an async iterable or a ReadableStream, not ${typeof body}`);
}

function pieceOf(v) {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  throw new TypeError(`cloudauth: a request body stream must yield Buffers, Uint8Arrays or strings, not ${v === null ? 'null' : typeof v}`);
}

// The caller's body as the worker reads it: pieces on demand, a fresh stream from the factory
// on rewind. A stream given directly is read once (the library then sends nothing twice).
class Source {
  constructor(body) {
    this.factory = typeof body === 'function' ? body : null;
    this.it = this.factory ? null : iterate(body);
    this.error = null;
  }

  get rewindable() { return this.factory !== null; }

  async next() {
    if (!this.it) this.it = iterate(this.factory());
    for (;;) {
      const { value, done } = await this.it.next();
      if (done) return null;
      const p = pieceOf(value);
      // One copy into a buffer of its own, moved (not cloned) to the worker.
      if (p.length) return p.buffer.slice(p.byteOffset, p.byteOffset + p.length);
    }
  }

  async rewind() {
    await this.close();
    this.it = iterate(this.factory());
  }

  async close() {
    const it = this.it;
    this.it = null;
    if (it && typeof it.return === 'function') await it.return();
  }
}

// ---- one request ------------------------------------------------------------------------------

/**
 * Runs one request on a worker. `job`: ptr, method, url, headers, body (bytes) or source
 * (a Source) with length, stream, deadline. `on`: head(status, rawHeaders), data(piece,
 * credit), end(err, done message). Returns cancel().
 */
function start(job, on) {
  const w = acquire();
  const ctl = new Int32Array(new SharedArrayBuffer(SIZE * 4));
  // A channel per job: an answer that comes after its job ended never reaches the next one.
  const { port1, port2 } = new MessageChannel();
  const wake = () => {
    Atomics.add(ctl, SIG, 1);
    Atomics.notify(ctl, SIG);
  };
  const answer = (m, transfer) => {
    if (finished) return;
    port1.postMessage(m, transfer);
    wake();
  };
  let finished = false;
  const source = job.source;
  w.job = {
    message(m) {
      if (m.t === 'data') {
        on.data(Buffer.from(m.piece), m.piece.byteLength);
      } else if (m.t === 'head') {
        on.head(m.status, m.rawHeaders);
      } else if (m.t === 'read') {
        source.next().then((chunk) => answer(chunk ? { chunk } : { end: true }, chunk ? [chunk] : []), (e) => {
          source.error = e;
          answer({ error: true });
        });
      } else if (m.t === 'rewind') {
        source.rewind().then(() => answer({ ok: true }), (e) => {
          source.error = e;
          answer({ ok: false });
        });
      } else if (m.t === 'done') {
        const b = m.response && m.response.body;
        if (b && !Buffer.isBuffer(b)) m.response.body = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
        this.done(m);
      }
    },
    done(m) {
      if (finished) return;
      finished = true;
      port1.close();
      release(w);
      // Not awaited: an async generator's return() waits for its pending step.
      if (source) source.close().catch(() => {});
      on.end(m);
    },
  };
  w.postMessage({
    ptr: job.ptr, method: job.method, url: job.url, headers: job.headers, body: job.body || null,
    source: source ? { length: job.length, rewindable: source.rewindable } : null,
    stream: job.stream, deadline: job.deadline, ctl: ctl.buffer, port: port2,
  }, [port2]);
  return {
    cancel() {
      if (finished) return;
      Atomics.store(ctl, CANCEL, 1);
      wake();
    },
    credit(n) {
      if (finished) return;
      Atomics.sub(ctl, CREDIT, n);
      wake();
    },
  };
}

/**
 * A response whose body is a Readable: status and headers first, the body as the reader takes
 * it (back-pressure reaches the server). Destroying the body stops the request.
 */
class StreamedResponse {
  constructor(status, rawHeaders, url, body, toHeaders) {
    this.status = status;
    this.url = url;
    this.rawHeaders = rawHeaders;
    this.body = body;
    let h = null;
    Object.defineProperty(this, 'headers', {
      enumerable: true,
      get() {
        if (!h) h = toHeaders(rawHeaders);
        return h;
      },
    });
  }

  get ok() { return this.status >= 200 && this.status < 300; }
  header(name) { return this.headers.get(name); }
}

// The Readable of a streamed response: pieces arrive from the worker, and their credit goes
// back when the Readable wants more (push() returned true, or _read()).
function responseBody(request) {
  let owed = 0;
  const body = new Readable({
    read() {
      if (owed) {
        const n = owed;
        owed = 0;
        request().credit(n);
      }
    },
    destroy(err, cb) {
      request().cancel();
      cb(err);
    },
  });
  body.piece = (buf, n) => {
    owed += n;
    if (body.push(buf)) body._read();
  };
  return body;
}

module.exports = { isStreamBody, Source, start, StreamedResponse, responseBody };
