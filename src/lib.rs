//! cloudauth: OAuth2 client credentials held safely, a valid access token kept at hand, and
//! authorized HTTP requests, behind a small C ABI (see `include/cloudauth.h`).
//!
//! One concept per module; `ffi` is the only place with `extern "C"`.

pub mod config;
pub mod dpop;
pub mod error;
pub mod events;
pub mod ffi;
pub mod fork;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod jose;
pub mod oauth;
pub mod ops;
pub mod runtime;
pub mod secret;
pub mod session;
pub mod sigpipe;
pub mod stats;
pub mod tls;
pub mod token;

pub use config::Config;
pub use error::{Code, Error, Result};
pub use http::request::Response;
pub use session::Session;
