//! Everything HTTP: the one send (`pipeline`), what carries a hop (`clients`, `direct`), what a
//! request carries (`body`), the per-session clients (`transport`), API requests and the URL
//! rules. The runtimes that drive it are the process's (`crate::runtime`).

pub mod body;
pub mod client_cert;
pub mod clients;
pub mod direct;
pub mod pipeline;
pub mod request;
pub mod socket;
pub mod transport;
pub mod url_policy;

/// The HTTP vocabulary the layers above use (the `http` crate's types, as reqwest re-exports
/// them): reqwest's own types (clients, responses, errors) stay inside this module.
pub use reqwest::header;
pub use reqwest::{Method, StatusCode};
