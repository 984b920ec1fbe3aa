'use strict';
// The C ABI through koffi: finding and loading libcloudauth.so, the function table, and the
// per-thread completion queue that brings every asynchronous result back to JavaScript.
//
// Threads: no library thread ever calls into JavaScript (koffi would queue such a call to the
// main thread and block the library thread until it ran: a deadlock when the main thread
// waits for that thread). Operations are started with the *_queued calls, which copy their
// arguments and return at once. Their completions, and the sessions' events, land in one
// completion queue per JavaScript thread (main thread or worker). A "pump" takes them: one
// koffi async call of cloudauth_queue_wait, which blocks a libuv threadpool thread for at most
// WAIT_MS, is armed while operations are in flight; when it returns, the main thread takes
// every completion ready with cloudauth_queue_wait(q, 0) (one wake-up for many answers) and
// arms it again. With nothing in flight no wait is armed, so an idle session never keeps the
// process alive; events that arrive then (background refreshes) are taken by an unref'd timer
// while someone listens for them.
//
// The queue is caller-driven by default: the requests' I/O runs inside that wait, on the
// threadpool thread, as undici's runs on the main thread (one hand-off each way instead of
// two: measured in bench/node). CLOUDAUTH_NODE_QUEUE=threads makes it a plain queue whose
// operations run on the library's threads (more parallel CPU at many requests in flight, and
// I/O goes on while the main thread is busy).

const fs = require('node:fs');
const path = require('node:path');

const koffi = require('koffi');

const PLATFORM = `${process.platform}-${process.arch}`;
const LIB_NAME = 'libcloudauth.so';

// Where the library may be, in order: CLOUDAUTH_LIBRARY, then the copy bundled in the package.
function candidates() {
  const env = process.env.CLOUDAUTH_LIBRARY;
  if (env) return [{ path: env, why: 'CLOUDAUTH_LIBRARY' }];
  return [{ path: path.join(__dirname, '..', 'prebuilds', PLATFORM, LIB_NAME), why: 'bundled' }];
}

let lib = null;
let libraryPath = null;

function load() {
  if (lib) return lib;
  const tried = [];
  for (const c of candidates()) {
    if (!fs.existsSync(c.path)) {
      tried.push(`${c.path} (${c.why}): not found`);
      continue;
    }
    try {
      lib = koffi.load(c.path);
      libraryPath = path.resolve(c.path);
      break;
    } catch (e) {
      tried.push(`${c.path} (${c.why}): ${String(e.message).split('\n')[0]}`);
    }
  }
  if (!lib) {
    const err = new Error(`cloudauth: cannot load the native library for ${PLATFORM}; looked at ${tried.join('; ')}. ` +
      'Set CLOUDAUTH_LIBRARY to the path of libcloudauth.so.');
    err.code = 'CLOUDAUTH_LIBRARY_NOT_FOUND';
    throw err;
  }
  declare(lib);
  return lib;
}

// Opaque handles are plain pointers (BigInt in koffi 3).
const fn = {};
let Completion, Event, Stats;

function declare(l) {
  koffi.opaque('cloudauth_config');
  koffi.opaque('cloudauth_session');
  koffi.opaque('cloudauth_queue');
  koffi.opaque('cloudauth_op');
  koffi.opaque('cloudauth_response');
  Event = koffi.struct('cloudauth_event', {
    kind: 'int', reason: 'const char *', result: 'int', http_status: 'uint16_t',
    duration_ms: 'uint64_t', message: 'const char *',
  });
  Completion = koffi.struct('cloudauth_completion', {
    tag: 'uint64_t', result: 'int', response: 'void *', token: 'void *', token_len: 'size_t',
    error: 'const char *', event: 'void *',
  });
  Stats = koffi.struct('cloudauth_stats', {
    token_requests: 'uint64_t', token_failures: 'uint64_t', background_refreshes: 'uint64_t',
    api_requests: 'uint64_t', unauthorized_resends: 'uint64_t', shared_cache_hits: 'uint64_t',
    shared_cache_errors: 'uint64_t', token_expires_in_ms: 'int64_t', connection_resends: 'uint64_t',
  });
  const protos = [
    'cloudauth_config *cloudauth_config_new()',
    'int cloudauth_config_set(cloudauth_config *cfg, const char *key, const char *value)',
    'int cloudauth_config_from_env(cloudauth_config *cfg, const char *prefix)',
    'void cloudauth_config_free(cloudauth_config *cfg)',
    'int cloudauth_config_set_event_queue(cloudauth_config *cfg, cloudauth_queue *q, uint64_t tag)',
    'const char *cloudauth_version()',
    'const char *cloudauth_result_name(int r)',
    'const char *cloudauth_last_error()',
    'cloudauth_queue *cloudauth_queue_new()',
    'cloudauth_queue *cloudauth_queue_new_caller_driven()',
    'int cloudauth_queue_wait(cloudauth_queue *q, int32_t timeout_ms, _Out_ void **out)',
    'void cloudauth_completion_free(void *c)',
    'int cloudauth_session_request_queued(cloudauth_session *s, const char *method, const char *url, ' +
      'const char **headers, size_t n_headers, const uint8_t *body, size_t body_len, cloudauth_queue *q, ' +
      'uint64_t tag, _Out_ cloudauth_op **out_op)',
    'int cloudauth_session_token_queued(cloudauth_session *s, cloudauth_queue *q, uint64_t tag, _Out_ cloudauth_op **out_op)',
    'void cloudauth_op_cancel(cloudauth_op *op)',
    'void cloudauth_op_free(cloudauth_op *op)',
    'uint16_t cloudauth_response_status(cloudauth_response *r)',
    'void *cloudauth_response_body(cloudauth_response *r, _Out_ size_t *len)',
    'size_t cloudauth_response_header_count(cloudauth_response *r)',
    'int cloudauth_response_header_at(cloudauth_response *r, size_t index, _Out_ const char **name, _Out_ const char **value)',
    'void cloudauth_response_free(cloudauth_response *r)',
    'int cloudauth_session_new(cloudauth_config *cfg, _Out_ cloudauth_session **out)',
    'int cloudauth_session_token_cached(cloudauth_session *s, void *buf, size_t buf_len, _Out_ size_t *token_len)',
    'int cloudauth_session_invalidate(cloudauth_session *s)',
    'int cloudauth_session_invalidate_token(cloudauth_session *s, const char *token)',
    'int cloudauth_session_check_url(cloudauth_session *s, const char *url)',
    'const char *cloudauth_session_origin(cloudauth_session *s)',
    'int cloudauth_session_set_credentials(cloudauth_session *s, const char *id, const char *secret)',
    'int cloudauth_session_stats(cloudauth_session *s, _Out_ cloudauth_stats *out, size_t out_size)',
    'void cloudauth_session_free(cloudauth_session *s)',
  ];
  for (const p of protos) {
    const f = l.func(p);
    fn[/(cloudauth_\w+)\(/.exec(p)[1]] = f;
  }
}

// ---- the completion queue of this JavaScript thread ----------------------------------------

const WAIT_MS = 100; // bounds how long a threadpool thread stays in one wait (and exit delay)
const OK = 0;

let queue = null;
let armed = false;
const pending = new Map(); // tag -> callback(completion fields); operations in flight
const eventSinks = new Map(); // tag -> callback(event); sessions of this thread
let listeners = 0; // sessions with an 'event' listener
let eventTimer = null;
let nextTag = 1;

function getQueue() {
  if (!queue) {
    load();
    queue = process.env.CLOUDAUTH_NODE_QUEUE === 'threads' ? fn.cloudauth_queue_new() : fn.cloudauth_queue_new_caller_driven();
    if (!queue) throw new Error(`cloudauth: cannot make a completion queue: ${fn.cloudauth_last_error()}`);
  }
  return queue;
}

function newTag() {
  const t = nextTag;
  nextTag += 1;
  return t;
}

// Reads one completion (and its response, which is freed here: the body is copied once).
function take(ptr) {
  const c = koffi.decode(ptr, Completion);
  const out = { tag: Number(c.tag), result: c.result, error: c.error || '', response: null, token: null, event: null };
  try {
    if (c.response) out.response = readResponse(c.response);
    if (c.token) out.token = koffi.decode(c.token, 'char', Number(c.token_len));
    if (c.event) {
      const e = koffi.decode(c.event, Event);
      out.event = { kind: e.kind, reason: e.reason || '', result: e.result, httpStatus: e.http_status,
        durationMs: Number(e.duration_ms), message: e.message || '' };
    }
  } finally {
    if (c.response) fn.cloudauth_response_free(c.response);
    fn.cloudauth_completion_free(ptr);
  }
  return out;
}

function readResponse(r) {
  const status = fn.cloudauth_response_status(r);
  const lenOut = [0];
  const bodyPtr = fn.cloudauth_response_body(r, lenOut);
  const len = Number(lenOut[0]);
  const body = len > 0 ? Buffer.from(koffi.view(bodyPtr, len).slice(0)) : Buffer.alloc(0);
  const n = Number(fn.cloudauth_response_header_count(r));
  const raw = new Array(n);
  const name = [null];
  const value = [null];
  for (let i = 0; i < n; i++) {
    fn.cloudauth_response_header_at(r, i, name, value);
    raw[i] = [name[0], value[0]];
  }
  return { status, rawHeaders: raw, body };
}

// The streamed-body calls, declared by the thread that makes them (stream_worker.js).
let streamApi = null;
function stream() {
  if (streamApi) return streamApi;
  load();
  const head = koffi.proto('int cloudauth_head_fn(void *user_data, cloudauth_response *head)');
  const write = koffi.proto('int cloudauth_write_fn(void *user_data, void *data, size_t len)');
  const read = koffi.proto('size_t cloudauth_read_fn(void *user_data, void *buf, size_t cap)');
  const rewind = koffi.proto('int cloudauth_rewind_fn(void *user_data)');
  koffi.struct('cloudauth_body_sink', { head: 'cloudauth_head_fn *', write: 'cloudauth_write_fn *', user_data: 'void *' });
  koffi.struct('cloudauth_body_source', {
    read: 'cloudauth_read_fn *', rewind: 'cloudauth_rewind_fn *', user_data: 'void *', length: 'int64_t',
  });
  streamApi = {
    types: { head, write, read, rewind },
    request: lib.func('int cloudauth_session_request_stream(cloudauth_session *s, const char *method, const char *url, ' +
      'const char **headers, size_t n_headers, const uint8_t *body, size_t body_len, const cloudauth_body_sink *sink, ' +
      '_Out_ cloudauth_response **out)'),
    requestBody: lib.func('int cloudauth_session_request_stream_body(cloudauth_session *s, const char *method, ' +
      'const char *url, const char **headers, size_t n_headers, const cloudauth_body_source *body, ' +
      'const cloudauth_body_sink *sink, _Out_ cloudauth_response **out)'),
  };
  return streamApi;
}

function deliver(ptr) {
  let c;
  try {
    c = take(ptr);
  } catch (e) {
    process.emitWarning(`cloudauth: could not read a completion: ${e.message}`);
    return;
  }
  const cb = pending.get(c.tag);
  if (cb) {
    pending.delete(c.tag);
    cb(c);
    return;
  }
  const sink = eventSinks.get(c.tag);
  if (sink && c.event) sink(c.event);
}

// Takes every completion that is ready, without waiting (main thread, non-blocking).
function drainReady() {
  if (!queue || armed) return;
  const out = [null];
  while (fn.cloudauth_queue_wait(queue, 0, out) === OK) deliver(out[0]);
}

function arm() {
  if (armed || pending.size === 0) return;
  armed = true;
  const out = [null];
  fn.cloudauth_queue_wait.async(queue, WAIT_MS, out, (err, rc) => {
    armed = false;
    if (!err && rc === OK) deliver(out[0]);
    else if (err) process.emitWarning(`cloudauth: waiting on the completion queue failed: ${err.message}`);
    // More answers may be ready; with none in flight, events wait for the next wait or timer.
    if (pending.size > 0) drainReady();
    arm();
  });
}

// Registers the callback of an operation started with `tag`; arms the pump.
function expect(tag, cb) {
  pending.set(tag, cb);
  arm();
}

function addEventSink(tag, sink) {
  eventSinks.set(tag, sink);
}

function removeEventSink(tag) {
  eventSinks.delete(tag);
}

// Events arrive with operations (taken by the pump) or on their own (background refreshes):
// while anyone listens, an unref'd timer takes those too, without keeping the process alive.
function listening(delta) {
  listeners += delta;
  if (listeners > 0 && !eventTimer) {
    eventTimer = setInterval(drainReady, 50);
    eventTimer.unref();
  } else if (listeners <= 0 && eventTimer) {
    clearInterval(eventTimer);
    eventTimer = null;
  }
}

function resultName(code) {
  load();
  return fn.cloudauth_result_name(code);
}

function lastError() {
  return fn.cloudauth_last_error();
}

module.exports = {
  koffi, fn, load, getQueue, newTag, expect, addEventSink, removeEventSink, listening,
  drainReady, resultName, lastError, readResponse, stream,
  get Stats() { load(); return Stats; },
  get libraryPath() { load(); return libraryPath; },
};
