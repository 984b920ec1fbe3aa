// Type definitions for cloudauth (the Node.js binding of the cloudauth native library).
/// <reference types="node" />

import { EventEmitter } from 'node:events';

/** The session options: the C library's configuration keys in camelCase. */
export interface SessionOptions {
  clientId?: string;
  clientSecret?: string;
  /** Default https://api.aspose.cloud/connect/token. */
  tokenUrl?: string;
  /** Joined with relative request paths; the adapters send the token to its origin only. */
  baseUrl?: string;
  scope?: string;
  authMethod?: 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt' | 'client_secret_jwt' |
    'tls_client_auth' | 'self_signed_tls_client_auth';
  timeoutMs?: number;
  connectTimeoutMs?: number;
  refreshSkewS?: number;
  maxRetries?: number;
  maxRetryWaitMs?: number;
  defaultExpiresInS?: number;
  maxResponseBytes?: number;
  userAgent?: string;
  caFile?: string;
  /** A proxy URL, or "none" to bypass the environment's proxy. */
  proxy?: string;
  allowInsecureHttp?: boolean;
  refreshMode?: 'background' | 'eager' | 'inline';
  clientSecretFile?: string;
  tokenCache?: 'memory' | 'file' | 'redis';
  tokenCacheDir?: string;
  redisUrl?: string;
  tokenCacheTimeoutMs?: number;
  clientKeyFile?: string;
  clientKeyId?: string;
  clientAssertionAlg?: 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA';
  clientCertFile?: string;
  dpop?: boolean;
  dpopKeyFile?: string;
  issuer?: string;
  audience?: string;
  /** RFC 8707 resource indicators. */
  resource?: string | string[];
  /** Extra token-request fields (token_param.NAME keys). */
  tokenParams?: Record<string, string>;
  /** Raw configuration keys, as the C library names them (snake_case). */
  settings?: Record<string, string | number | boolean>;
}

export type HeadersArg = Record<string, string | number | ReadonlyArray<string>> | Headers | Map<string, string> |
  ReadonlyArray<readonly [string, string]>;
export type BodyArg = string | Buffer | ArrayBufferView | ArrayBuffer | URLSearchParams | null;

/** Pieces of a request body: Buffers, Uint8Arrays (any ArrayBufferView) or strings. */
export type BodyPiece = Uint8Array | ArrayBufferView | ArrayBuffer | string;
/**
 * A body read while it is sent: a Readable, an async (or sync) iterable of pieces, a web
 * ReadableStream, or a function returning one of those. Only a function makes it replayable:
 * it is called again for a resend (after a 401 to the token, a 307/308); a stream given
 * directly is sent once (a 401 is then the answer, its token dropped).
 */
export type StreamBodyArg = AsyncIterable<BodyPiece> | Iterable<BodyPiece> | ReadableStream<Uint8Array> |
  (() => AsyncIterable<BodyPiece> | Iterable<BodyPiece> | ReadableStream<Uint8Array>);

export interface RequestOptions {
  headers?: HeadersArg;
  /** Bytes, sent as is (and again for a resend), or a stream body (see StreamBodyArg). */
  body?: BodyArg | StreamBodyArg;
  /** A stream body's size in bytes (sent as Content-Length); without it the body is sent chunked. */
  contentLength?: number;
  /** Aborting cancels the request: it rejects with a CancelledError whose cause is the reason. */
  signal?: AbortSignal;
}

export interface StreamRequestOptions extends RequestOptions {
  /** The response's body as a Readable, read as it arrives (status and headers first). */
  stream: true;
}

/**
 * A response whose body is a Readable. Back-pressure reaches the server; destroying the body
 * stops the request. A failure after the head (cap, timeout, abort) is the body's 'error'.
 */
export class StreamedResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly url: string;
  readonly headers: Headers;
  readonly rawHeaders: ReadonlyArray<[string, string]>;
  readonly body: import('node:stream').Readable;
  header(name: string): string | null;
}

export class Response {
  readonly status: number;
  readonly ok: boolean;
  readonly url: string;
  readonly headers: Headers;
  /** [name, value] pairs in the order received, lower-case names. */
  readonly rawHeaders: ReadonlyArray<[string, string]>;
  readonly body: Buffer;
  text(): string;
  json<T = unknown>(): T;
  header(name: string): string | null;
}

export interface Stats {
  tokenRequests: number;
  tokenFailures: number;
  backgroundRefreshes: number;
  apiRequests: number;
  unauthorizedResends: number;
  sharedCacheHits: number;
  sharedCacheErrors: number;
  /** -1 when there is no token. */
  tokenExpiresInMs: number;
  connectionResends: number;
}

export interface SessionEvent {
  kind: 'token_fetched' | 'token_fetch_failed' | 'retry' | 'unauthorized' | 'cache_unavailable';
  /** Why a token was asked for ("first_use", "refresh_ahead", ...); "" for other kinds. */
  reason: string;
  /** "CLOUDAUTH_OK" or the failure's code. */
  result: string;
  httpStatus: number;
  durationMs: number;
  message: string;
}

/** What session.share() returns: post it to a worker, which adopts it with Session.fromShared(). */
export interface SharedSession {
  readonly ptr: bigint;
  readonly refs: Int32Array;
  readonly claim: Int32Array;
  readonly baseUrl: string;
  readonly timeoutMs: number;
}

export class Session extends EventEmitter {
  constructor(options: SessionOptions);
  /** From CLOUDAUTH_* environment variables (or `prefix`); `options` override them. */
  static fromEnv(options?: SessionOptions, prefix?: string): Session;
  static fromShared(handle: SharedSession): Session;
  share(): SharedSession;
  readonly closed: boolean;
  /** base_url as given to this binding (or its default). */
  readonly baseUrl: string;
  /** The origin the token is meant for, "scheme://host[:port]" of base_url as the library has it. */
  readonly origin: string;
  token(options?: { signal?: AbortSignal }): Promise<string>;
  /** The token if one is usable without I/O, else null (a fetch then starts in the background). */
  cachedToken(): string | null;
  request(method: string, url: string | URL, options: StreamRequestOptions): Promise<StreamedResponse>;
  request(method: string, url: string | URL, options?: RequestOptions): Promise<Response>;
  get(url: string | URL, options: StreamRequestOptions): Promise<StreamedResponse>;
  get(url: string | URL, options?: RequestOptions): Promise<Response>;
  post(url: string | URL, options: StreamRequestOptions): Promise<StreamedResponse>;
  post(url: string | URL, options?: RequestOptions): Promise<Response>;
  invalidate(): Promise<void>;
  invalidateToken(token: string): Promise<void>;
  checkUrl(url: string): boolean;
  setCredentials(clientId: string, clientSecret: string): void;
  stats(): Stats;
  close(): void;
  [Symbol.dispose](): void;
  on(event: 'event', listener: (event: SessionEvent) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'event', listener: (event: SessionEvent) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class CloudAuthError extends Error {
  /** The library's name of the result code, e.g. "CLOUDAUTH_ERR_TIMEOUT". */
  readonly code: string;
  readonly result: number;
}
export class InvalidArgumentError extends CloudAuthError {}
export class BufferTooSmallError extends CloudAuthError {}
export class InsecureUrlError extends CloudAuthError {}
export class NetworkError extends CloudAuthError {}
export class TimeoutError extends CloudAuthError {}
export class AuthRejectedError extends CloudAuthError {}
export class TokenEndpointError extends CloudAuthError {}
export class BadTokenResponseError extends CloudAuthError {}
export class TooLargeError extends CloudAuthError {}
export class InternalError extends CloudAuthError {}
export class CancelledError extends CloudAuthError {}
export class WouldBlockError extends CloudAuthError {}
export function errorFor(result: number, message?: string): CloudAuthError;

/** A fetch-compatible function that adds the session's token (docs/adapters.md). */
export function fetch(session: Session, options?: { fetch?: typeof globalThis.fetch }): typeof globalThis.fetch;

/** An undici interceptor: `new Agent().compose(undiciInterceptor(session))`. */
export function undiciInterceptor(session: Session): (dispatch: (opts: any, handler: any) => boolean) => (opts: any, handler: any) => boolean;

/** Installs the request and 401 response interceptors on an axios instance; returns a remover. */
export function axiosInterceptors(session: Session, instance: {
  interceptors: { request: { use(...a: any[]): number; eject(id: number): void }; response: { use(...a: any[]): number; eject(id: number): void } };
  getUri(config?: any): string;
  request(config: any): Promise<any>;
}): () => void;

/** For `wordsApi.configuration.authentication` of the asposewordscloud SDK. */
export interface AsposeAuthentication {
  applyToRequest(requestOptions: any, configuration?: any): Promise<void>;
  handle401response(configuration?: any): Promise<void>;
}
export function asposeAuthentication(session: Session): AsposeAuthentication;

export function libraryVersion(): string;
export function libraryPath(): string;
