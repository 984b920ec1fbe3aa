//! TLS setup shared by every session: the system's roots (`roots`), loaded once per process at
//! the first certificate check (`verifier`), not when a session is made.

pub mod roots;
pub mod verifier;
