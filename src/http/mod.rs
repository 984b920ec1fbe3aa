//! Everything HTTP: the one send (`pipeline`), what carries a hop (`clients`, `direct`),
//! the per-session clients (`transport`), API requests and the URL rules; and, for now, the
//! runtimes that drive it (`runtime`).

pub mod client_cert;
pub mod clients;
pub mod direct;
pub mod pipeline;
pub mod request;
pub mod runtime;
pub mod transport;
pub mod url_policy;
