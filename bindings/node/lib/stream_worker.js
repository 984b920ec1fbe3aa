'use strict';
// The thread that makes streamed requests, one at a time (see stream.js for why a thread).
// It calls the library synchronously, so the library calls its read, rewind, head and write
// callbacks on this thread, where JavaScript may block: each callback waits with Atomics.wait
// on the job's control array for the main thread (a piece of the request body, room for
// the next piece of the response), bounded by the job's deadline and ended by its cancel flag.

const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');

if (workerData.library) process.env.CLOUDAUTH_LIBRARY = workerData.library;
const ffi = require('./ffi');
const { SIG, CREDIT, CANCEL, WINDOW } = require('./stream_control');

const api = ffi.stream();
const { koffi } = ffi;
const READ_FAILED = 0xffffffffffffffffn; // CLOUDAUTH_READ_FAILED, (size_t)-1
const STOP = 1;

let job = null; // { ctl, port, deadline, rest, ended, timedOut }

// Waits until `ready()` holds; false when the job was cancelled or its deadline passed.
function waitFor(ready) {
  const { ctl } = job;
  for (;;) {
    const seen = Atomics.load(ctl, SIG);
    if (Atomics.load(ctl, CANCEL)) return false;
    if (ready()) return true;
    const left = job.deadline - Date.now();
    if (left <= 0) {
      job.timedOut = true;
      return false;
    }
    Atomics.wait(ctl, SIG, seen, left);
  }
}

// Asks the main thread (`what`) and takes its answer, or null (cancelled, past the deadline).
function ask(what) {
  parentPort.postMessage({ t: what });
  let answer = null;
  return waitFor(() => {
    const m = receiveMessageOnPort(job.port); // the main thread's answer (a piece, a rewind)
    if (m) answer = m.message;
    return m !== undefined;
  }) ? answer : null;
}

function read(_ud, buf, cap) {
  if (!job.rest || job.rest.length === 0) {
    if (job.ended) return 0n; // the library's probe for bytes past a declared length
    const m = ask('read');
    if (!m || m.error) return READ_FAILED;
    if (m.end) {
      job.ended = true;
      return 0n;
    }
    job.rest = new Uint8Array(m.chunk);
  }
  const n = Math.min(Number(cap), job.rest.length);
  new Uint8Array(koffi.view(buf, n)).set(job.rest.subarray(0, n));
  job.rest = job.rest.subarray(n);
  return BigInt(n);
}

function rewind() {
  const m = ask('rewind');
  if (!m || !m.ok) return STOP;
  job.rest = null;
  job.ended = false;
  return 0;
}

function head(_ud, r) {
  if (Atomics.load(job.ctl, CANCEL)) return STOP;
  const { status, rawHeaders } = ffi.readResponse(r);
  parentPort.postMessage({ t: 'head', status, rawHeaders });
  return 0;
}

function write(_ud, data, len) {
  const { ctl } = job;
  if (Atomics.load(ctl, CANCEL)) return STOP;
  const n = Number(len);
  const piece = koffi.view(data, n).slice(0); // valid during this call only: copied once
  Atomics.add(ctl, CREDIT, n);
  parentPort.postMessage({ t: 'data', piece }, [piece]);
  // Back-pressure: the main thread gives credit back as its reader takes the pieces.
  return waitFor(() => Atomics.load(ctl, CREDIT) <= WINDOW) ? 0 : STOP;
}

const cb = {
  read: koffi.register(read, koffi.pointer(api.types.read)),
  rewind: koffi.register(rewind, koffi.pointer(api.types.rewind)),
  head: koffi.register(head, koffi.pointer(api.types.head)),
  write: koffi.register(write, koffi.pointer(api.types.write)),
};

function run(j) {
  const out = [null];
  const headers = j.headers.length ? j.headers : null;
  const sink = j.stream ? { head: cb.head, write: cb.write, user_data: null } : null;
  if (j.source) {
    const source = { read: cb.read, rewind: j.source.rewindable ? cb.rewind : null, user_data: null, length: j.source.length };
    return [api.requestBody(j.ptr, j.method, j.url, headers, j.headers.length, source, sink, out), out[0]];
  }
  const body = j.body || null;
  return [api.request(j.ptr, j.method, j.url, headers, j.headers.length, body, body ? body.length : 0, sink, out), out[0]];
}

parentPort.on('message', (j) => {
  if (j.close) {
    for (const c of Object.values(cb)) koffi.unregister(c);
    parentPort.close();
    return;
  }
  job = { ctl: new Int32Array(j.ctl), port: j.port, deadline: j.deadline, rest: null, ended: false, timedOut: false };
  let msg;
  try {
    const [rc, r] = run(j);
    if (rc === 0) {
      try {
        msg = { t: 'done', rc, response: ffi.readResponse(r) };
      } finally {
        ffi.fn.cloudauth_response_free(r);
      }
    } else {
      msg = { t: 'done', rc, error: ffi.lastError() || '', timedOut: job.timedOut };
    }
  } catch (e) {
    msg = { t: 'done', rc: 10, error: `the streaming thread failed: ${String(e && e.message).split('\n')[0]}`, timedOut: false };
  }
  j.port.close();
  job = null;
  const body = msg.response && msg.response.body;
  parentPort.postMessage(msg, body && body.length ? [body.buffer] : []);
});
