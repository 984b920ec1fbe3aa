'use strict';
// cloudauth for Node.js: the CommonJS entry point (lib/index.mjs re-exports it for ESM).
const ffi = require('./ffi');
const errors = require('./errors');
const { Session, Response } = require('./session');
const adapters = require('./adapters');
const { StreamedResponse } = require('./stream');

/** The version of the loaded native library, e.g. "0.1.0". */
function libraryVersion() {
  ffi.load();
  return ffi.fn.cloudauth_version();
}

/** The path of the native library this process loaded. */
function libraryPath() {
  return ffi.libraryPath;
}

module.exports = {
  Session,
  Response,
  StreamedResponse,
  ...errors,
  fetch: adapters.fetch,
  undiciInterceptor: adapters.undiciInterceptor,
  axiosInterceptors: adapters.axiosInterceptors,
  asposeAuthentication: adapters.asposeAuthentication,
  libraryVersion,
  libraryPath,
};
