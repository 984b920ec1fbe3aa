//! Everything HTTP: the runtimes that drive it (per calling thread, and the library's own
//! threads), the per-session clients, API requests and the URL rules.

pub mod client_cert;
pub mod clients;
pub mod direct;
pub mod request;
pub mod runtime;
pub mod transport;
pub mod url_policy;
