'use strict';
// Adapters for HTTP clients Node users already have: fetch, undici dispatchers, axios and the
// Aspose Words SDK. Each one applies the same rule (docs/adapters.md):
// - the token goes only to requests for the session's origin (scheme, host and port of
//   base_url: session.origin, from the library), on every redirect hop too: a hop leaving the origin carries no token;
// - a 401 counts as "the server rejected our token" only when the request that got it (the
//   final hop) carried the Authorization header with the token the adapter added. Then the
//   adapter always calls invalidateToken with exactly that token, and resends once when the
//   body can be replayed; a stream cannot, so its 401 is returned unchanged (the token still
//   dropped). A 401 to the resend drops its token too and is returned. Any other 401 is
//   returned unchanged and drops nothing.

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;

function sessionOrigin(session) {
  if (!session || typeof session.token !== 'function' || typeof session.invalidateToken !== 'function') {
    throw new TypeError('cloudauth: an adapter needs a cloudauth Session');
  }
  // The library's own: base_url from options, environment (Session.fromEnv) or default,
  // serialized as WHATWG URL's origin is (the library parses URLs by the same standard).
  return session.origin;
}

function originOf(url) {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

const bearer = (token) => `Bearer ${token}`;

// ---- fetch -----------------------------------------------------------------------------------

function replayableFetchBody(body) {
  return body == null || typeof body === 'string' || body instanceof ArrayBuffer || ArrayBuffer.isView(body) ||
    body instanceof URLSearchParams || (typeof Blob !== 'undefined' && body instanceof Blob) ||
    (typeof FormData !== 'undefined' && body instanceof FormData);
}

/**
 * A fetch-compatible function that adds the session's token (see the rule above).
 * Redirects are followed here (redirect: 'manual' underneath), so that each hop is checked.
 * @param {import('./session').Session} session
 * @param {{fetch?: typeof globalThis.fetch}} [options] the fetch to wrap (default: the global one)
 */
function fetch(session, options = {}) {
  const origin = sessionOrigin(session);
  const base = options.fetch || globalThis.fetch;
  if (typeof base !== 'function') throw new TypeError('cloudauth.fetch: no fetch to wrap');

  return async function cloudauthFetch(input, init = {}) {
    let url;
    let method = 'GET';
    let headers;
    let body = null;
    let redirect = 'follow';
    let signal;
    if (typeof Request !== 'undefined' && input instanceof Request) {
      url = new URL(input.url);
      method = input.method;
      headers = new Headers(input.headers);
      // A Request's body is a stream: read it once, so that it can be replayed.
      if (input.body !== null && !('body' in init)) body = await input.arrayBuffer();
      redirect = input.redirect;
      signal = input.signal;
    } else {
      url = new URL(String(input));
    }
    const { headers: ih, body: ib, method: im, redirect: ir, signal: is, ...rest } = init || {};
    if (im !== undefined) method = String(im).toUpperCase();
    if (ih !== undefined) headers = new Headers(ih);
    if (!headers) headers = new Headers();
    if (ib !== undefined) body = ib;
    if (ir !== undefined) redirect = ir;
    if (is !== undefined) signal = is;
    const userAuth = headers.has('authorization');
    const firstOrigin = url.origin;
    let retried = false;

    for (let hops = 0; ; hops++) {
      let token = null;
      if (url.origin === origin && !userAuth) {
        token = await session.token({ signal });
        headers.set('authorization', bearer(token));
      } else if (!userAuth || url.origin !== firstOrigin) {
        headers.delete('authorization'); // never past the origin it was meant for
      }
      const res = await base(url.href, { ...rest, method, headers, body, redirect: 'manual', signal });
      if (REDIRECTS.has(res.status) && redirect !== 'manual' && res.headers.has('location')) {
        if (redirect === 'error') throw new TypeError(`cloudauth.fetch: redirect from ${url.origin} with redirect: 'error'`);
        if (hops >= MAX_REDIRECTS) throw new TypeError('cloudauth.fetch: too many redirects');
        const next = new URL(res.headers.get('location'), url);
        if (res.status === 303 ? method !== 'HEAD' : (res.status <= 302 && method === 'POST')) {
          method = 'GET';
          body = null;
          for (const h of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) headers.delete(h);
        } else if (!replayableFetchBody(body)) {
          throw new TypeError('cloudauth.fetch: cannot follow a 307/308 redirect with a stream body');
        }
        await res.body?.cancel().catch(() => {});
        url = next;
        continue;
      }
      if (res.status === 401 && token !== null) {
        await session.invalidateToken(token); // always, the resend's 401 too
        if (!retried && replayableFetchBody(body)) {
          retried = true;
          await res.body?.cancel().catch(() => {});
          hops -= 1;
          continue;
        }
      }
      return res;
    }
  };
}

// ---- undici: a dispatcher interceptor ----------------------------------------------------------

function hasAuthorization(headers) {
  if (!headers) return false;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (String(headers[i]).toLowerCase() === 'authorization') return true;
    return false;
  }
  if (typeof headers[Symbol.iterator] === 'function') {
    for (const [k] of headers) if (String(k).toLowerCase() === 'authorization') return true;
    return false;
  }
  return Object.keys(headers).some((k) => k.toLowerCase() === 'authorization');
}

function withAuthorization(headers, token) {
  if (!headers) return { authorization: bearer(token) };
  if (Array.isArray(headers)) return [...headers, 'authorization', bearer(token)];
  if (typeof headers[Symbol.iterator] === 'function') return [...[...headers].flat(), 'authorization', bearer(token)];
  return { ...headers, authorization: bearer(token) };
}

function replayableDispatchBody(body) {
  return body == null || typeof body === 'string' || body instanceof Uint8Array;
}

/**
 * An undici interceptor: `new Agent().compose(cloudauth.undiciInterceptor(session))`, then
 * `fetch(url, { dispatcher })` or `request(url, { dispatcher })`. Every dispatch (every
 * redirect hop) for the session's origin gets the token; others pass untouched.
 */
function undiciInterceptor(session) {
  const origin = sessionOrigin(session);
  return (dispatch) => function cloudauthDispatch(opts, handler) {
    if (originOf(String(opts.origin)) !== origin || hasAuthorization(opts.headers)) return dispatch(opts, handler);
    const replayable = replayableDispatchBody(opts.body);
    const send = (token, retried) => {
      const attempt = { ...opts, headers: withAuthorization(opts.headers, token) };
      return dispatch(attempt, new UnauthorizedHandler(handler, token, !retried && replayable, session, (t) => send(t, true)));
    };
    let cached = null;
    try {
      cached = session.cachedToken();
    } catch (e) {
      handler.onResponseError?.(null, e);
      return true;
    }
    if (cached !== null) return send(cached, false);
    session.token().then((t) => send(t, false), (e) => handler.onResponseError?.(null, e));
    return true;
  };
}

// Passes everything through, except a 401 to a request that carried our token and can be
// resent: that answer is swallowed, the token dropped, and the request sent once more.
class UnauthorizedHandler {
  #inner; #token; #mayResend; #session; #resend; #swallow = false;

  constructor(inner, token, mayResend, session, resend) {
    this.#inner = inner;
    this.#token = token;
    this.#mayResend = mayResend;
    this.#session = session;
    this.#resend = resend;
  }

  onRequestStart(controller, context) { return this.#inner.onRequestStart?.(controller, context); }
  onRequestUpgrade(controller, status, headers, socket) { return this.#inner.onRequestUpgrade?.(controller, status, headers, socket); }

  onResponseStart(controller, statusCode, headers, statusMessage) {
    if (statusCode === 401) {
      const dropped = this.#session.invalidateToken(this.#token);
      if (this.#mayResend) {
        this.#swallow = dropped;
        return true;
      }
      dropped.catch(() => {});
    }
    return this.#inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller, chunk) {
    if (this.#swallow) return true;
    return this.#inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller, trailers) {
    if (!this.#swallow) return this.#inner.onResponseEnd?.(controller, trailers);
    this.#swallow.then(() => this.#session.token()).then((t) => this.#resend(t), (e) => this.#inner.onResponseError?.(controller, e));
    return undefined;
  }

  onResponseError(controller, err) { return this.#inner.onResponseError?.(controller, err); }
}

// ---- axios -----------------------------------------------------------------------------------

function replayableAxiosData(data) {
  return !(data && typeof data === 'object' && (typeof data.pipe === 'function' || typeof data.getReader === 'function' ||
    typeof data[Symbol.asyncIterator] === 'function'));
}

/**
 * Adds a request interceptor (the token, for the session's origin, on every redirect hop via
 * `beforeRedirect`) and a 401 response interceptor to an axios instance. Returns a function
 * that removes both.
 */
function axiosInterceptors(session, instance) {
  const origin = sessionOrigin(session);
  if (!instance || !instance.interceptors) throw new TypeError('cloudauth.axiosInterceptors: pass an axios instance (axios or axios.create())');
  const req = instance.interceptors.request.use(async (config) => {
    const url = instance.getUri(config);
    const own = config.headers && config.headers.has && config.headers.has('Authorization');
    if (originOf(url) !== origin || own) {
      config.cloudauth = null;
      return config;
    }
    const token = await session.token({ signal: config.signal });
    config.headers.set('Authorization', bearer(token));
    const state = { token, carried: true };
    config.cloudauth = state;
    const user = config.beforeRedirect;
    config.beforeRedirect = (options, responseDetails, requestDetails) => {
      const next = options.href || `${options.protocol}//${options.hostname}${options.port ? `:${options.port}` : ''}`;
      if (originOf(next) !== origin) {
        for (const k of Object.keys(options.headers || {})) if (k.toLowerCase() === 'authorization') delete options.headers[k];
      }
      state.carried = Object.keys(options.headers || {}).some((k) => k.toLowerCase() === 'authorization' && options.headers[k] === bearer(token));
      if (user) user(options, responseDetails, requestDetails);
    };
    return config;
  });

  const on401 = async (response) => {
    const config = response.config;
    const state = config && config.cloudauth;
    if (response.status !== 401 || !state || !state.carried) return null;
    await session.invalidateToken(state.token);
    if (config.cloudauthRetried || !replayableAxiosData(config.data)) return null;
    config.cloudauthRetried = true;
    config.headers.delete('Authorization');
    return instance.request(config);
  };
  const res = instance.interceptors.response.use(
    async (response) => (await on401(response)) || response,
    async (error) => {
      if (error && error.response) {
        const again = await on401(error.response);
        if (again) return again;
      }
      throw redactAxiosError(error);
    },
  );
  return () => {
    instance.interceptors.request.eject(req);
    instance.interceptors.response.eject(res);
  };
}

// An AxiosError holds its config (our Authorization header) and the raw request head: no
// token may show in util.inspect(error) or a log of it.
function redactAxiosError(error) {
  const state = error && error.config && error.config.cloudauth;
  if (!state) return error;
  const secret = bearer(state.token);
  const hide = (v) => (typeof v === 'string' ? v.split(state.token).join('[token]') : v);
  const headers = error.config.headers;
  if (headers) {
    if (typeof headers.set === 'function' && headers.get('Authorization') === secret) headers.set('Authorization', 'Bearer [token]');
    else if (headers.Authorization === secret) headers.Authorization = 'Bearer [token]';
  }
  // The finished http.ClientRequest (and follow-redirects' wrapper around it) keep the head.
  const req = error.request;
  for (const r of [req, req && req._currentRequest, req && req._redirectable && req._redirectable._currentRequest]) {
    if (!r || typeof r !== 'object') continue;
    if (typeof r._header === 'string') r._header = hide(r._header);
    const out = Object.getOwnPropertySymbols(r).find((sym) => sym.description === 'kOutHeaders');
    if (out && r[out] && r[out].authorization) r[out].authorization = [r[out].authorization[0], hide(r[out].authorization[1])];
  }
  for (const o of [req && req._options, req && req._redirectable && req._redirectable._options]) {
    if (o && o.headers) redactHeaders(o.headers, state.token);
  }
  error.config.cloudauth = { token: '[token]', carried: state.carried };
  return error;
}

function redactHeaders(headers, token) {
  for (const k of Object.keys(headers)) if (typeof headers[k] === 'string' && headers[k].includes(token)) headers[k] = 'Bearer [token]';
}

// ---- the Aspose Words SDK (asposewordscloud) ------------------------------------------------

/**
 * An object for `wordsApi.configuration.authentication`: the SDK calls applyToRequest before
 * each request and handle401response after a 401, then sends the same request options again
 * (once). The token comes from the session; a request leaving the session's origin on a
 * redirect loses it. The SDK's handle401response is not told which request failed, so the
 * token is dropped when the SDK re-applies authentication to the same request options: that
 * request carried exactly that token (unless a redirect took it away).
 */
function asposeAuthentication(session) {
  const origin = sessionOrigin(session);
  const sent = new WeakMap(); // requestOptions -> { token, carried }
  return {
    async applyToRequest(requestOptions) {
      if (!requestOptions) return;
      requestOptions.headers = requestOptions.headers || {};
      const before = sent.get(requestOptions);
      if (before && before.carried) {
        // The SDK resends these options only after a 401 to them.
        await session.invalidateToken(before.token);
      }
      if (originOf(String(requestOptions.uri)) !== origin) {
        delete requestOptions.headers.Authorization;
        sent.delete(requestOptions);
        return;
      }
      const token = await session.token();
      requestOptions.headers.Authorization = bearer(token);
      const state = { token, carried: true };
      sent.set(requestOptions, state);
      // The `request` library keeps Authorization on a redirect to another port: decide here.
      requestOptions.followRedirect = function followRedirect(response) {
        const next = new URL(response.headers.location, String(this.uri.href || requestOptions.uri));
        if (next.origin !== origin) {
          this.removeHeader('authorization');
          state.carried = false;
        }
        return true;
      };
    },
    async handle401response() {
      // Nothing to do here: see applyToRequest.
    },
  };
}

module.exports = { fetch, undiciInterceptor, axiosInterceptors, asposeAuthentication };
