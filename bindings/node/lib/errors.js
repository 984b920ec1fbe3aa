'use strict';
// One Error subclass per result code of the C ABI, all under CloudAuthError. `code` is the
// library's name of the code ("CLOUDAUTH_ERR_TIMEOUT"), `result` its number; the message is
// the library's one line, which never contains a secret or a token.

class CloudAuthError extends Error {
  constructor(message, result, code) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.result = result;
  }
}

const table = [
  [1, 'CLOUDAUTH_ERR_INVALID_ARGUMENT', 'InvalidArgumentError'],
  [2, 'CLOUDAUTH_ERR_BUFFER_TOO_SMALL', 'BufferTooSmallError'],
  [3, 'CLOUDAUTH_ERR_INSECURE_URL', 'InsecureUrlError'],
  [4, 'CLOUDAUTH_ERR_NETWORK', 'NetworkError'],
  [5, 'CLOUDAUTH_ERR_TIMEOUT', 'TimeoutError'],
  [6, 'CLOUDAUTH_ERR_AUTH_REJECTED', 'AuthRejectedError'],
  [7, 'CLOUDAUTH_ERR_TOKEN_ENDPOINT', 'TokenEndpointError'],
  [8, 'CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE', 'BadTokenResponseError'],
  [9, 'CLOUDAUTH_ERR_TOO_LARGE', 'TooLargeError'],
  [10, 'CLOUDAUTH_ERR_INTERNAL', 'InternalError'],
  [11, 'CLOUDAUTH_ERR_CANCELLED', 'CancelledError'],
  [12, 'CLOUDAUTH_ERR_WOULD_BLOCK', 'WouldBlockError'],
];

const classes = { CloudAuthError };
const byResult = new Map();
for (const [result, code, name] of table) {
  // A named class per code, so that stack traces and util.inspect show the kind.
  const cls = { [name]: class extends CloudAuthError {
    constructor(message) { super(message, result, code); }
  } }[name];
  classes[name] = cls;
  byResult.set(result, cls);
}

function errorFor(result, message) {
  const cls = byResult.get(result);
  if (cls) return new cls(message || cls.name);
  return new CloudAuthError(message || `result ${result}`, result, 'CLOUDAUTH_UNKNOWN_RESULT');
}

module.exports = { ...classes, errorFor };
