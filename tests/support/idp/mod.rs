//! Shared by tests/identity_providers.rs, tests/dpop.rs and tests/jose.rs: the recording server
//! (tests/support/idp_server.py) on 127.0.0.1, key files made by openssl, and JWS checks with
//! ring (never with the library's own code).
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cloudauth::Config;
use ring::signature;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Idp {
    child: Child,
    pub url: String,
}

impl Idp {
    pub fn start() -> Idp {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/idp_server.py");
        let mut child = Command::new("python3")
            .args([script, "120"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("PORT ").unwrap().to_owned();
        Idp {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn requests(&self) -> Vec<Value> {
        reqwest::blocking::get(format!("{}/_requests", self.url))
            .unwrap()
            .json::<Vec<Value>>()
            .unwrap()
    }

    /// The form fields of the token requests so far (the last value of each field).
    pub fn token_forms(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["method"] == "POST")
            .map(|r| r["form"].clone())
            .collect()
    }

    pub fn config(&self, extra: &[(&str, &str)]) -> Config {
        let mut cfg = Config::default();
        cfg.set("client_id", "idp-client").unwrap();
        cfg.set("token_url", &format!("{}/token", self.url))
            .unwrap();
        cfg.set("base_url", &self.url).unwrap();
        for (k, v) in extra {
            cfg.set(k, v).unwrap();
        }
        cfg
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("cloudauth-idp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A key of `kind` ("rsa", "p256", "p384", "ed25519") in `path`.
pub fn make_key(kind: &str, path: &str) {
    match kind {
        "rsa" => openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            path,
        ]),
        "p256" => openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            path,
        ]),
        "p384" => openssl(&[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            path,
        ]),
        _ => openssl(&["genpkey", "-algorithm", "ED25519", "-out", path]),
    };
}

/// The raw public key ring verifies with, cut from openssl's SubjectPublicKeyInfo: the
/// subjectPublicKey BIT STRING is its tail, of a length fixed by the key type.
pub fn public_key(kind: &str, path: &str) -> Vec<u8> {
    let spki = openssl(&["pkey", "-in", path, "-pubout", "-outform", "DER"]);
    let tail = match kind {
        "rsa" => 270,
        "p256" => 65,
        "p384" => 97,
        _ => 32,
    };
    spki[spki.len() - tail..].to_vec()
}

pub fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// A compact JWS's header and claims, after checking its signature.
pub fn verified(
    jws: &str,
    alg: &'static dyn signature::VerificationAlgorithm,
    public: &[u8],
) -> (Value, Value) {
    let (input, sig) = jws.rsplit_once('.').unwrap();
    signature::UnparsedPublicKey::new(alg, public)
        .verify(input.as_bytes(), &b64(sig))
        .expect("the signature verifies");
    let (h, c) = input.split_once('.').unwrap();
    (
        serde_json::from_slice(&b64(h)).unwrap(),
        serde_json::from_slice(&b64(c)).unwrap(),
    )
}
