'use strict';
// The control array a streamed request shares between the main thread and its worker
// (Int32Array over a SharedArrayBuffer). SIG counts the main thread's wake-ups (an answer on
// the port, credit given back, cancel); the worker waits on it.
module.exports = {
  SIG: 0, // bumped (and notified) by the main thread after each change
  CREDIT: 1, // response bytes the worker has posted and the reader has not taken yet
  CANCEL: 2, // 1: stop the request at the next callback
  SIZE: 3,
  WINDOW: 256 * 1024, // the worker waits while more than this is in flight to the reader
};
