'use strict';
// Session: credentials, the cached token and a connection pool, in the native core. Every call
// that can do I/O returns a Promise and runs off the main thread (see ffi.js); cachedToken()
// and stats() are synchronous and never wait.

const { EventEmitter } = require('node:events');

const ffi = require('./ffi');
const errors = require('./errors');
const streams = require('./stream');

const OK = 0;
const DEFAULT_BASE_URL = 'https://api.aspose.cloud';
const DEFAULT_TIMEOUT_MS = 30000; // the library's timeout_ms default
const CANCELLED = 11;
const WOULD_BLOCK = 12;
const BUFFER_TOO_SMALL = 2;

// The configuration keys of the C library (include/cloudauth.h), by their camelCase option.
const KEYS = [
  'client_id', 'client_secret', 'token_url', 'base_url', 'scope', 'auth_method', 'timeout_ms',
  'connect_timeout_ms', 'refresh_skew_s', 'max_retries', 'max_retry_wait_ms', 'default_expires_in_s',
  'max_response_bytes', 'user_agent', 'ca_file', 'proxy', 'allow_insecure_http', 'refresh_mode',
  'client_secret_file', 'token_cache', 'token_cache_dir', 'redis_url', 'token_cache_timeout_ms',
  'client_key_file', 'client_key_id', 'client_assertion_alg', 'client_cert_file', 'dpop',
  'dpop_key_file', 'issuer', 'audience', 'resource',
];
const camel = (k) => k.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const OPTION_KEYS = new Map(KEYS.map((k) => [camel(k), k]));

const EVENT_KINDS = { 1: 'token_fetched', 2: 'token_fetch_failed', 3: 'retry', 4: 'unauthorized', 5: 'cache_unavailable' };

function valueText(option, v) {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  if (typeof v === 'bigint' && v >= 0n) return v.toString();
  throw new TypeError(`cloudauth: option ${option} must be a string, a boolean or a non-negative integer, not ${describe(v)}`);
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return `the number ${v}`;
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

// Options -> [key, value] pairs in the C library's terms.
function expand(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`cloudauth: Session options must be an object, not ${describe(options)}`);
  }
  const pairs = [];
  for (const [name, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (name === 'settings') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError('cloudauth: option settings must be an object of configuration keys');
      for (const [k, raw] of Object.entries(v)) pairs.push([k, valueText(`settings.${k}`, raw), `settings.${k}`]);
    } else if (name === 'tokenParams') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError('cloudauth: option tokenParams must be an object of field names and values');
      for (const [k, raw] of Object.entries(v)) pairs.push([`token_param.${k}`, valueText(`tokenParams.${k}`, raw), `tokenParams.${k}`]);
    } else if (name === 'resource' && Array.isArray(v)) {
      for (const item of v) {
        if (typeof item !== 'string') throw new TypeError(`cloudauth: option resource items must be strings, not ${describe(item)}`);
        if (item.includes(',')) throw new errors.InvalidArgumentError('resource: a resource indicator holds no comma');
      }
      pairs.push(['resource', v.join(','), name]);
    } else if (name === 'onEvent') {
      // handled by the Session
    } else {
      const key = OPTION_KEYS.get(name);
      if (!key) throw new errors.InvalidArgumentError(`cloudauth: unknown option '${name}' (options are camelCase configuration keys: ${[...OPTION_KEYS.keys()].join(', ')}, tokenParams, settings)`);
      pairs.push([key, valueText(name, v), name]);
    }
  }
  return pairs;
}

function fail(rc, what) {
  return errors.errorFor(rc, `${what}: ${ffi.lastError() || ffi.resultName(rc)}`);
}

function checkString(name, v) {
  if (typeof v !== 'string') throw new TypeError(`cloudauth: ${name} must be a string, not ${describe(v)}`);
  if (v.includes('\0')) throw new errors.InvalidArgumentError(`cloudauth: ${name} contains a NUL character`);
}

// Request headers as "Name: value" lines. Accepts a plain object, a Headers, a Map or pairs.
function headerLines(headers) {
  if (headers == null) return [];
  let entries;
  if (Array.isArray(headers)) entries = headers;
  else if (typeof headers.entries === 'function' && headers.constructor !== Object) entries = [...headers.entries()];
  else if (typeof headers === 'object') entries = Object.entries(headers);
  else throw new TypeError(`cloudauth: headers must be an object, a Headers, a Map or [name, value] pairs, not ${describe(headers)}`);
  const lines = [];
  for (const e of entries) {
    if (!Array.isArray(e) || e.length !== 2) throw new TypeError('cloudauth: each header must be a [name, value] pair');
    const [k, v] = e;
    if (typeof k !== 'string') throw new TypeError(`cloudauth: a header name must be a string, not ${describe(k)}`);
    const values = Array.isArray(v) ? v : [v];
    for (const one of values) {
      if (typeof one !== 'string' && typeof one !== 'number') throw new TypeError(`cloudauth: header ${k} must be a string, not ${describe(one)}`);
      const line = `${k}: ${one}`;
      if (line.includes('\0')) throw new errors.InvalidArgumentError(`cloudauth: header ${k} contains a NUL character`);
      lines.push(line);
    }
  }
  return lines;
}

function bodyBytes(body) {
  if (body == null) return null;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString(), 'utf8');
  throw new TypeError(`cloudauth: body must be a string, a Buffer, a typed array, an ArrayBuffer or URLSearchParams, a stream (Readable, async iterable, ReadableStream) or a function returning one, not ${describe(body)}`);
}

class Response {
  constructor(raw, url) {
    this.status = raw.status;
    this.url = url;
    this.rawHeaders = raw.rawHeaders;
    this.body = raw.body;
    let h = null;
    Object.defineProperty(this, 'headers', {
      enumerable: true,
      get() {
        if (!h) h = toHeaders(raw.rawHeaders);
        return h;
      },
    });
  }

  get ok() { return this.status >= 200 && this.status < 300; }
  text() { return this.body.toString('utf8'); }
  json() { return JSON.parse(this.text()); }
  header(name) { return this.headers.get(name); }
}

function toHeaders(raw) {
  const h = new Headers();
  for (const [k, v] of raw) {
    try {
      h.append(k, v);
    } catch {
      // A value that is not a ByteString (non-Latin-1 after UTF-8 decoding): its bytes as
      // Latin-1, as undici hands such headers to fetch users.
      h.append(k, Buffer.from(v, 'utf8').toString('latin1'));
    }
  }
  return h;
}

// A process-wide reference count for a native session shared between threads
// (session.share() / Session.fromShared()): Int32Array over a SharedArrayBuffer.
function newRefs() {
  const refs = new Int32Array(new SharedArrayBuffer(4));
  refs[0] = 1;
  return refs;
}

const kHandle = Symbol('handle');

class Session extends EventEmitter {
  /**
   * @param {object} options clientId, clientSecret and the other options (camelCase keys).
   */
  constructor(options, _fromEnvPrefix, _shared) {
    super();
    ffi.load();
    this[kHandle] = { ptr: null, closed: false, busy: 0, ops: new Map(), refs: null, eventTag: 0, listening: false };
    const h = this[kHandle];
    if (_shared) {
      h.ptr = _shared.ptr;
      h.refs = _shared.refs;
      h.baseUrl = _shared.baseUrl;
      h.timeoutMs = _shared.timeoutMs;
    } else {
      const pairs = expand(options === undefined && _fromEnvPrefix !== undefined ? {} : options);
      // The origin the adapters send the token to: base_url as the library will see it.
      const base = pairs.filter((p) => p[0] === 'base_url').pop();
      h.baseUrl = base ? base[1]
        : (_fromEnvPrefix !== undefined && process.env[`${_fromEnvPrefix}BASE_URL`]) || DEFAULT_BASE_URL;
      // Bounds the waits of a streamed request's callbacks (stream.js), as timeout_ms bounds
      // the library's: a source or a reader that stalls cannot hold a worker past it.
      const timeout = pairs.filter((p) => p[0] === 'timeout_ms').pop();
      h.timeoutMs = Number(timeout ? timeout[1]
        : (_fromEnvPrefix !== undefined && process.env[`${_fromEnvPrefix}TIMEOUT_MS`]) || DEFAULT_TIMEOUT_MS) || DEFAULT_TIMEOUT_MS;
      const q = ffi.getQueue();
      const cfg = ffi.fn.cloudauth_config_new();
      try {
        if (_fromEnvPrefix !== undefined) {
          const rc = ffi.fn.cloudauth_config_from_env(cfg, _fromEnvPrefix);
          if (rc !== OK) throw fail(rc, 'cloudauth: Session.fromEnv');
        }
        for (const [key, value, option] of pairs) {
          if (key.includes('\0') || value.includes('\0')) throw new errors.InvalidArgumentError(`cloudauth: option ${option} contains a NUL character`);
          const rc = ffi.fn.cloudauth_config_set(cfg, key, value);
          if (rc !== OK) throw fail(rc, `cloudauth: option ${option}`);
        }
        h.eventTag = ffi.newTag();
        ffi.fn.cloudauth_config_set_event_queue(cfg, q, h.eventTag);
        const out = [null];
        const rc = ffi.fn.cloudauth_session_new(cfg, out);
        if (rc !== OK) throw fail(rc, 'cloudauth: new Session');
        h.ptr = out[0];
      } finally {
        ffi.fn.cloudauth_config_free(cfg);
      }
      h.refs = newRefs();
      ffi.addEventSink(h.eventTag, (e) => this.#emitEvent(e));
    }
    this.on('newListener', (name) => { if (name === 'event') this.#listen(true); });
    this.on('removeListener', (name) => { if (name === 'event' && this.listenerCount('event') === 0) this.#listen(false); });
  }

  /** A session configured from CLOUDAUTH_* environment variables; `options` override them. */
  static fromEnv(options = {}, prefix = 'CLOUDAUTH_') {
    if (typeof prefix !== 'string') throw new TypeError('cloudauth: the prefix must be a string');
    const s = new Session(options, prefix);
    return s;
  }

  /**
   * Adopts a native session shared by another thread (`session.share()`, posted to a worker).
   * Each handle is adopted once. Events of a shared session are emitted by the Session that
   * made it.
   */
  static fromShared(handle) {
    if (!handle || typeof handle.ptr !== 'bigint' || !(handle.refs instanceof Int32Array) || !(handle.claim instanceof Int32Array)) {
      throw new TypeError('cloudauth: Session.fromShared needs the object session.share() returned');
    }
    if (Atomics.compareExchange(handle.claim, 0, 0, 1) !== 0) throw new errors.InvalidArgumentError('cloudauth: this shared session handle was adopted already');
    return new Session(undefined, undefined, handle);
  }

  /** A handle to this native session for another thread (worker_threads); it holds a reference until adopted. */
  share() {
    const h = this.#live('share');
    Atomics.add(h.refs, 0, 1);
    return { ptr: h.ptr, refs: h.refs, baseUrl: h.baseUrl, timeoutMs: h.timeoutMs, claim: new Int32Array(new SharedArrayBuffer(4)) };
  }

  #live(what) {
    const h = this[kHandle];
    if (h.closed) throw new errors.InvalidArgumentError(`cloudauth: ${typeof what === 'function' ? what() : what}: the session is closed`);
    return h;
  }

  #listen(on) {
    const h = this[kHandle];
    if (on !== h.listening && !h.closed) {
      h.listening = on;
      ffi.listening(on ? 1 : -1);
    }
  }

  #emitEvent(e) {
    const event = {
      kind: EVENT_KINDS[e.kind] || `kind_${e.kind}`,
      reason: e.reason,
      result: e.result === OK ? 'CLOUDAUTH_OK' : ffi.resultName(e.result),
      httpStatus: e.httpStatus,
      durationMs: e.durationMs,
      message: e.message,
    };
    this.emit('event', event);
  }

  // Starts a queued operation; resolves with its completion. `start(tag, outOp)` returns rc.
  // `label` names the call in messages; a function, so that it costs nothing until needed.
  #operation(label, start, signal, onDone) {
    let h;
    const what = () => (typeof label === 'function' ? label() : label);
    try {
      h = this.#live(what);
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal != null && (typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) {
      return Promise.reject(new TypeError('cloudauth: signal must be an AbortSignal'));
    }
    if (signal && signal.aborted) {
      return Promise.reject(abortError(signal, what()));
    }
    return new Promise((resolve, reject) => {
      const tag = ffi.newTag();
      const outOp = [null];
      const rc = start(h.ptr, ffi.getQueue(), tag, outOp);
      if (rc !== OK) {
        reject(fail(rc, `cloudauth: ${what()}`));
        return;
      }
      const op = outOp[0];
      let onAbort = null;
      const entry = { op, cancel: () => ffi.fn.cloudauth_op_cancel(op) };
      h.ops.set(tag, entry);
      if (signal) {
        onAbort = () => entry.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
      }
      ffi.expect(tag, (c) => {
        h.ops.delete(tag);
        ffi.fn.cloudauth_op_free(op);
        if (signal) signal.removeEventListener('abort', onAbort);
        this.#maybeFree();
        if (c.result === OK) {
          resolve(onDone(c));
        } else if (c.result === 11 && signal && signal.aborted) {
          reject(abortError(signal, what()));
        } else {
          reject(errors.errorFor(c.result, `cloudauth: ${what()}: ${c.error || ffi.resultName(c.result)}`));
        }
      });
    });
  }

  /** A valid access token, fetched when needed. Never blocks the event loop. */
  token({ signal } = {}) {
    return this.#operation('token', (s, q, tag, out) => ffi.fn.cloudauth_session_token_queued(s, q, tag, out), signal, (c) => c.token);
  }

  /**
   * The token if one is usable now, else null (and a fetch starts in the background).
   * Synchronous: the C ABI's non-blocking call.
   */
  cachedToken() {
    const h = this.#live('cachedToken');
    let buf = Buffer.allocUnsafe(2048);
    const len = [0];
    for (let i = 0; i < 3; i++) {
      const rc = ffi.fn.cloudauth_session_token_cached(h.ptr, buf, buf.length, len);
      if (rc === OK) {
        const t = buf.toString('utf8', 0, Number(len[0]));
        buf.fill(0);
        return t;
      }
      if (rc === WOULD_BLOCK) return null;
      if (rc !== BUFFER_TOO_SMALL) throw fail(rc, 'cloudauth: cachedToken');
      buf = Buffer.allocUnsafe(Number(len[0]) + 1);
    }
    throw new errors.InternalError('cloudauth: cachedToken: the token kept growing');
  }

  /**
   * Sends an authorized request and reads the whole response.
   * @param {string} method
   * @param {string} url an absolute URL, or a path joined to baseUrl
   */
  request(method, url, options = {}) {
    try {
      checkString('method', method);
      if (url instanceof URL) url = url.href;
      checkString('url', url);
      if (options === null || typeof options !== 'object') throw new TypeError('cloudauth: request options must be an object');
      for (const k of Object.keys(options)) {
        if (!REQUEST_OPTIONS.includes(k)) throw new TypeError(`cloudauth: unknown request option '${k}' (${REQUEST_OPTIONS.join(', ')})`);
      }
      const lines = headerLines(options.headers);
      const what = () => `${method} ${redact(url)}`;
      if (options.stream || streams.isStreamBody(options.body)) return this.#streamed(method, url, lines, options, what);
      if (options.contentLength !== undefined) throw new TypeError('cloudauth: contentLength is for a stream body');
      const body = bodyBytes(options.body);
      return this.#operation(what, (s, q, tag, out) => ffi.fn.cloudauth_session_request_queued(
        s, method, url, lines.length ? lines : null, lines.length, body, body ? body.length : 0, q, tag, out),
      options.signal, (c) => new Response(c.response, url));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // A request with a stream body and/or a streamed response, run on a worker (stream.js).
  #streamed(method, url, lines, options, what) {
    const { signal, stream } = options;
    if (stream !== undefined && typeof stream !== 'boolean') throw new TypeError('cloudauth: stream must be a boolean');
    if (signal != null && (typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) throw new TypeError('cloudauth: signal must be an AbortSignal');
    const source = streams.isStreamBody(options.body) ? new streams.Source(options.body) : null;
    let length = -1;
    if (options.contentLength !== undefined) {
      if (!source) throw new TypeError('cloudauth: contentLength is for a stream body');
      if (!Number.isSafeInteger(options.contentLength) || options.contentLength < 0) {
        throw new TypeError(`cloudauth: contentLength must be a non-negative integer, not ${describe(options.contentLength)}`);
      }
      length = options.contentLength;
    }
    const body = source ? null : bodyBytes(options.body);
    const h = this.#live(what);
    if (signal && signal.aborted) throw abortError(signal, what());
    const tag = ffi.newTag();
    return new Promise((resolve, reject) => {
      let res = null; // the StreamedResponse, once the head came
      const onAbort = () => run.cancel();
      const fail = (m) => {
        if (source && source.error) {
          const e = new errors.CancelledError(`cloudauth: ${what()}: the request body failed: ${oneLine(source.error)}`);
          e.cause = source.error;
          return e;
        }
        if (m.rc === CANCELLED && signal && signal.aborted) return abortError(signal, what());
        if (m.timedOut) {
          return new errors.TimeoutError(`cloudauth: ${what()}: timed out after ${h.timeoutMs} ms waiting for the ${source && !res ? 'request body' : 'reader'}`);
        }
        if (m.rc === CANCELLED && res && res.body.destroyed) return null;
        return errors.errorFor(m.rc, `cloudauth: ${what()}: ${m.error || ffi.resultName(m.rc)}`);
      };
      const run = streams.start({
        ptr: h.ptr, method, url, headers: lines, body, source, length, stream: Boolean(stream),
        deadline: Date.now() + h.timeoutMs,
      }, {
        head(status, rawHeaders) {
          res = new streams.StreamedResponse(status, rawHeaders, url, streams.responseBody(() => run), toHeaders);
          resolve(res);
        },
        data(piece, n) { res.body.piece(piece, n); },
        end: (m) => {
          h.ops.delete(tag);
          if (signal) signal.removeEventListener('abort', onAbort);
          this.#maybeFree();
          if (m.rc === OK) {
            if (res) res.body.push(null);
            else resolve(new Response(m.response, url));
            return;
          }
          const err = fail(m);
          if (!res) reject(err);
          else if (err && !res.body.destroyed) res.body.destroy(err);
        },
      });
      h.ops.set(tag, { cancel: () => run.cancel() });
      if (signal) signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  get(url, options) { return this.request('GET', url, options); }
  post(url, options) { return this.request('POST', url, options); }

  /** Drops the cached token: the next call fetches a new one. */
  invalidate() {
    return this.#blocking('invalidate', (s, cb) => ffi.fn.cloudauth_session_invalidate.async(s, cb));
  }

  /** Drops the cached token only if it is still `token` (the one a server just rejected). */
  invalidateToken(token) {
    try {
      checkString('token', token);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#blocking('invalidateToken', (s, cb) => ffi.fn.cloudauth_session_invalidate_token.async(s, token, cb));
  }

  // A short C call that may touch a shared cache (file, Redis): on the threadpool. The
  // session is not freed while it runs (close() waits for `busy` to reach 0).
  #blocking(what, call) {
    let h;
    try {
      h = this.#live(what);
    } catch (e) {
      return Promise.reject(e);
    }
    h.busy += 1;
    return new Promise((resolve, reject) => {
      call(h.ptr, (err, rc) => {
        h.busy -= 1;
        this.#maybeFree();
        if (err) reject(err);
        else if (rc !== OK) reject(errors.errorFor(rc, `cloudauth: ${what}: ${ffi.resultName(rc)}`));
        else resolve();
      });
    });
  }

  /** Whether a request to `url` may carry this session's token (the library's rule). */
  checkUrl(url) {
    const h = this.#live('checkUrl');
    checkString('url', url);
    const rc = ffi.fn.cloudauth_session_check_url(h.ptr, url);
    if (rc === OK) return true;
    if (rc === 3) return false;
    throw fail(rc, 'cloudauth: checkUrl');
  }

  /** Rotates the credentials (later token requests use them). */
  setCredentials(clientId, clientSecret) {
    const h = this.#live('setCredentials');
    checkString('clientId', clientId);
    checkString('clientSecret', clientSecret);
    const rc = ffi.fn.cloudauth_session_set_credentials(h.ptr, clientId, clientSecret);
    if (rc !== OK) throw fail(rc, 'cloudauth: setCredentials');
  }

  /** The session's counters. Takes no lock, sends nothing. */
  stats() {
    const h = this.#live('stats');
    const out = {};
    const rc = ffi.fn.cloudauth_session_stats(h.ptr, out, ffi.koffi.sizeof(ffi.Stats));
    if (rc !== OK) throw fail(rc, 'cloudauth: stats');
    return {
      tokenRequests: Number(out.token_requests), tokenFailures: Number(out.token_failures),
      backgroundRefreshes: Number(out.background_refreshes), apiRequests: Number(out.api_requests),
      unauthorizedResends: Number(out.unauthorized_resends), sharedCacheHits: Number(out.shared_cache_hits),
      sharedCacheErrors: Number(out.shared_cache_errors), tokenExpiresInMs: Number(out.token_expires_in_ms),
      connectionResends: Number(out.connection_resends),
    };
  }

  get closed() { return this[kHandle].closed; }

  /** base_url as given to this binding (or its default); the library's view of it is `origin`. */
  get baseUrl() { return this[kHandle].baseUrl; }

  /**
   * The origin the token is meant for, "scheme://host[:port]" of base_url as the library has
   * it (options, environment or default; cloudauth_session_origin). The adapters add the
   * token only to requests for this origin.
   */
  get origin() {
    const h = this.#live('origin');
    if (h.origin === undefined) {
      const origin = ffi.fn.cloudauth_session_origin(h.ptr);
      if (origin == null) throw new errors.InvalidArgumentError(`cloudauth: origin: ${ffi.fn.cloudauth_last_error()}`);
      h.origin = origin;
    }
    return h.origin;
  }

  /**
   * Closes the session: calls in flight end with CancelledError; later calls throw.
   * Idempotent. The native session is freed once no call of this thread uses it any more
   * (and, for a shared session, once every thread has closed it).
   */
  close() {
    const h = this[kHandle];
    if (h.closed) return;
    h.closed = true;
    if (h.listening) {
      h.listening = false;
      ffi.listening(-1);
    }
    for (const entry of h.ops.values()) entry.cancel();
    this.#maybeFree();
  }

  #maybeFree() {
    const h = this[kHandle];
    if (!h.closed || h.ptr === null || h.busy > 0 || h.ops.size > 0) return;
    const ptr = h.ptr;
    h.ptr = null;
    if (h.eventTag) {
      // Events still in the queue are delivered first, then the sink goes.
      const tag = h.eventTag;
      setImmediate(() => ffi.removeEventSink(tag));
    }
    if (Atomics.sub(h.refs, 0, 1) === 1) ffi.fn.cloudauth_session_free(ptr);
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `Session { ${this.closed ? 'closed' : 'open'}, ${this[kHandle].ops.size} in flight }`;
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Session.prototype[Symbol.dispose] = function dispose() { this.close(); };
}
if (typeof Symbol.asyncDispose === 'symbol') {
  Session.prototype[Symbol.asyncDispose] = async function asyncDispose() { this.close(); };
}

const REQUEST_OPTIONS = ['headers', 'body', 'signal', 'stream', 'contentLength'];

// An error's message as one bounded line.
function oneLine(e) {
  return String(e && e.message !== undefined ? e.message : e).split('\n')[0].slice(0, 200);
}

function abortError(signal, what) {
  const e = new errors.CancelledError(`cloudauth: ${what}: aborted`);
  e.cause = signal.reason;
  return e;
}

// A URL for a message: no query (it may hold a secret) and no user info.
function redact(url) {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.split('?')[0].slice(0, 200);
  }
}

module.exports = { Session, Response };
