// cloudauth for Node.js: the ES module entry point, over the CommonJS one (one copy of the state).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const cloudauth = require('./index.js');

export default cloudauth;
export const {
  Session, Response, StreamedResponse, CloudAuthError, InvalidArgumentError, BufferTooSmallError, InsecureUrlError,
  NetworkError, TimeoutError, AuthRejectedError, TokenEndpointError, BadTokenResponseError,
  TooLargeError, InternalError, CancelledError, WouldBlockError, errorFor, fetch, undiciInterceptor, axiosInterceptors,
  asposeAuthentication, libraryVersion, libraryPath,
} = cloudauth;
