//! Shared by the Rust integration tests: a stand-in server per test (so tests run in parallel
//! without sharing fault knobs), driven over real HTTP on 127.0.0.1.
#![allow(dead_code)]

pub mod pki;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const CLIENT_ID: &str = "demo-client";
pub const SECRET: &str = "demo-secret";

pub struct StandIn {
    child: Child,
    pub url: String,
    control: reqwest::blocking::Client,
}

impl StandIn {
    pub fn start() -> StandIn {
        StandIn::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> StandIn {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/standin/server.py");
        let mut child = Command::new("python3")
            .args([script, "--port", "0", "--lifetime", "300"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the stand-in");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("stand-in said {line:?}"));
        StandIn {
            child,
            url: format!("http://127.0.0.1:{port}"),
            control: reqwest::blocking::Client::new(),
        }
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn configure(&self, knobs: Value) {
        let r = self
            .control
            .post(format!("{}/_control/config", self.url))
            .json(&knobs)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "config {knobs}: {}", r.status());
    }

    pub fn revoke(&self) {
        self.control
            .post(format!("{}/_control/revoke", self.url))
            .send()
            .unwrap();
    }

    pub fn stats(&self) -> Value {
        self.control
            .get(format!("{}/_control/stats", self.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn token_requests(&self) -> u64 {
        self.stats()["token_requests"].as_u64().unwrap()
    }

    /// A config pointing at this stand-in, with `extra` keys on top.
    pub fn config(&self, extra: &[(&str, &str)]) -> cloudauth::Config {
        let mut cfg = cloudauth::Config::default();
        cfg.set("client_id", CLIENT_ID).unwrap();
        cfg.set("client_secret", SECRET).unwrap();
        cfg.set("token_url", &format!("{}/connect/token", self.url))
            .unwrap();
        cfg.set("base_url", &self.url).unwrap();
        for (k, v) in extra {
            cfg.set(k, v).unwrap();
        }
        cfg
    }

    pub fn session(&self, extra: &[(&str, &str)]) -> cloudauth::Session {
        cloudauth::Session::new(&self.config(extra)).unwrap()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn token(s: &cloudauth::Session) -> cloudauth::Result<String> {
    s.with_token(str::to_owned)
}

pub fn get(s: &cloudauth::Session, path: &str) -> cloudauth::Result<cloudauth::Response> {
    s.request("GET", path, [], b"")
}

pub fn script(entries: Value) -> Value {
    json!({ "token_script": entries })
}
