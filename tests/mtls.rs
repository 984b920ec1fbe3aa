//! Mutual TLS (RFC 8705): the client certificate goes to the token endpoint and to the session's
//! origin, and to no other origin (absolute URLs, redirects); replacing the files rotates it at
//! the next token request; bad files are refused naming the key, never quoting it.
//!
//! Against `tests/support/mtls_server.py`: HTTPS listeners on 127.0.0.1 that ask for a client
//! certificate and record the SHA-256 of the one presented (or none). Certificates and keys are
//! made with openssl at test time.

use cloudauth::{Code, Config, Session};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA, the server's certificate for 127.0.0.1, and client certificates on demand.
struct Pki {
    dir: PathBuf,
}

/// `-newkey` arguments and, for the traditional encodings, the openssl command that rewrites
/// the PKCS#8 key.
#[derive(Clone, Copy)]
enum Key {
    RsaPkcs8,
    RsaPkcs1,
    EcP256Sec1,
    EcP384Pkcs8,
    Ed25519,
}

impl Key {
    fn newkey(self) -> &'static [&'static str] {
        match self {
            Key::RsaPkcs8 | Key::RsaPkcs1 => &["-newkey", "rsa:2048"],
            Key::EcP256Sec1 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Key::EcP384Pkcs8 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            Key::Ed25519 => &["-newkey", "ed25519"],
        }
    }
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir =
            std::env::temp_dir().join(format!("cloudauth-mtls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        pki.write(
            "server.ext",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki.write("client.ext", "extendedKeyUsage=clientAuth\n");
        pki.write(
            "inter.ext",
            "basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n",
        );
        pki.run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cloudauth mtls CA",
        ]);
        pki.issue("server", Key::EcP256Sec1, "ca", "server.ext");
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }

    fn run(&self, args: &[&str]) {
        openssl(&self.dir, args);
    }

    /// `<name>.pem` and `<name>.key`, signed by `<issuer>.pem`.
    fn issue(&self, name: &str, key: Key, issuer: &str, ext: &str) {
        let (key_file, csr) = (format!("{name}.key"), format!("{name}.csr"));
        let mut args = vec!["req", "-new", "-nodes", "-keyout", &key_file, "-out", &csr];
        args.extend(key.newkey());
        let subject = format!("/CN={name}");
        args.extend(["-subj", &subject]);
        self.run(&args);
        let (ca, ca_key, cert) = (
            format!("{issuer}.pem"),
            format!("{issuer}.key"),
            format!("{name}.pem"),
        );
        self.run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            ext,
        ]);
        match key {
            Key::RsaPkcs1 => {
                self.run(&["rsa", "-in", &key_file, "-out", &key_file, "-traditional"])
            }
            Key::EcP256Sec1 => self.run(&["ec", "-in", &key_file, "-out", &key_file]),
            _ => {}
        }
    }

    /// A client certificate issued by the test CA: (cert path, key path).
    fn client(&self, name: &str, key: Key) -> (String, String) {
        self.issue(name, key, "ca", "client.ext");
        (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        )
    }

    /// A self-signed client certificate (self_signed_tls_client_auth).
    fn self_signed(&self, name: &str) -> (String, String) {
        let (key, cert, subject) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={name}"),
        );
        self.run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            "extendedKeyUsage=clientAuth",
        ]);
        (self.path(&cert), self.path(&key))
    }

    /// SHA-256 of the certificate's DER, as the server records it.
    fn fingerprint(&self, cert: &str) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in", cert])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Server {
    child: Child,
    origin: String,
    other: String,
    control: String,
}

impl Server {
    /// Trusts the test CA and the given self-signed certificates as issuers of client certs.
    fn start(pki: &Pki, trusted: &[&str]) -> Server {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/mtls_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([
                pki.path("server.pem"),
                pki.path("server.key"),
                pki.path("ca.pem"),
            ])
            .args(trusted)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Vec<&str> = line
            .trim()
            .strip_prefix("PORTS ")
            .unwrap_or_else(|| panic!("server said {line:?}"))
            .split(' ')
            .collect();
        Server {
            child,
            origin: format!("https://127.0.0.1:{}", ports[0]),
            other: format!("https://127.0.0.1:{}", ports[1]),
            control: format!("http://127.0.0.1:{}", ports[2]),
        }
    }

    /// Every request seen since the last call, in order.
    fn take_log(&self) -> Vec<Value> {
        let log: Vec<Value> = reqwest::blocking::get(format!("{}/log", self.control))
            .unwrap()
            .json()
            .unwrap();
        reqwest::blocking::get(format!("{}/clear", self.control)).unwrap();
        log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // the server stops when its stdin closes
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(pki: &Pki, server: &Server, method: &str, cert: &str, key: &str) -> Config {
    let mut cfg = Config::default();
    for (k, v) in [
        ("client_id", "mtls-client"),
        ("auth_method", method),
        ("client_cert_file", cert),
        ("client_key_file", key),
        ("token_url", &format!("{}/token", server.origin)),
        ("base_url", &server.origin),
        ("ca_file", &pki.path("ca.pem")),
        ("max_retries", "0"),
        ("refresh_mode", "inline"),
    ] {
        cfg.set(k, v).unwrap();
    }
    cfg
}

fn get(session: &Session, target: &str) -> u16 {
    session
        .request("GET", target, std::iter::empty(), b"")
        .unwrap_or_else(|e| panic!("GET {target}: {e:?}"))
        .status
}

/// (listener, path, certificate or null, Authorization or null) of each request.
fn seen(log: &[Value]) -> Vec<(String, String, Option<String>, Option<String>)> {
    log.iter()
        .map(|r| {
            (
                r["listener"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
                r["cert"].as_str().map(str::to_owned),
                r["authorization"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn the_certificate_goes_to_the_token_endpoint_and_the_origin_only() {
    let pki = Pki::new("origin");
    let server = Server::start(&pki, &[]);
    let (cert, key) = pki.client("client", Key::EcP256Sec1);
    let fp = Some(pki.fingerprint(&cert));
    let session = Session::new(&config(&pki, &server, "tls_client_auth", &cert, &key)).unwrap();

    assert_eq!(get(&session, "/api/one"), 200);
    let log = server.take_log();
    let token = session.with_token(str::to_owned).unwrap();
    let bearer = Some(format!("Bearer {token}"));
    assert_eq!(
        seen(&log),
        vec![
            ("origin".into(), "/token".into(), fp.clone(), None),
            (
                "origin".into(),
                "/api/one".into(),
                fp.clone(),
                bearer.clone()
            ),
        ]
    );
    // RFC 8705 §2: the client_id in the body, and no secret of any kind.
    let form = log[0]["form"].as_object().unwrap();
    assert_eq!(form["client_id"], serde_json::json!(["mtls-client"]));
    assert_eq!(
        form["grant_type"],
        serde_json::json!(["client_credentials"])
    );
    let mut fields: Vec<&String> = form.keys().collect();
    fields.sort();
    assert_eq!(fields, ["client_id", "grant_type"]);

    // Another origin, named by an absolute URL: no certificate.
    assert_eq!(
        get(&session, &format!("{}/api/absolute", server.other)),
        200
    );
    assert_eq!(
        seen(&server.take_log()),
        vec![("other".into(), "/api/absolute".into(), None, bearer.clone())]
    );

    // A redirect within the origin keeps it; one off the origin, as 302 and as 307, does not
    // present it (nor the token), and nor does a hop back to the origin after leaving it.
    assert_eq!(get(&session, "/redirect?to=/api/same"), 200);
    let to_other = format!("{}/api/after-redirect", server.other);
    assert_eq!(get(&session, &format!("/redirect?to={to_other}")), 200);
    assert_eq!(
        get(&session, &format!("/redirect?status=307&to={to_other}")),
        200
    );
    let back = format!("{}/redirect?to={}/api/back", server.other, server.origin);
    assert_eq!(get(&session, &format!("/redirect?to={back}")), 200);
    assert_eq!(
        seen(&server.take_log()),
        vec![
            (
                "origin".into(),
                "/redirect".into(),
                fp.clone(),
                bearer.clone()
            ),
            (
                "origin".into(),
                "/api/same".into(),
                fp.clone(),
                bearer.clone()
            ),
            (
                "origin".into(),
                "/redirect".into(),
                fp.clone(),
                bearer.clone()
            ),
            ("other".into(), "/api/after-redirect".into(), None, None),
            (
                "origin".into(),
                "/redirect".into(),
                fp.clone(),
                bearer.clone()
            ),
            ("other".into(), "/api/after-redirect".into(), None, None),
            (
                "origin".into(),
                "/redirect".into(),
                fp.clone(),
                bearer.clone()
            ),
            ("other".into(), "/redirect".into(), None, None),
            ("origin".into(), "/api/back".into(), None, None),
        ]
    );

    // The library runtime's clients (async operations) make the same choice.
    let (tx, rx) = std::sync::mpsc::channel();
    for target in [
        "/api/async".to_owned(),
        format!("{}/api/async-other", server.other),
    ] {
        let tx = tx.clone();
        session
            .request_async("GET", &target, std::iter::empty(), b"", move |r| {
                tx.send(r.map(|r| r.status)).unwrap()
            })
            .unwrap();
        assert_eq!(rx.recv().unwrap().unwrap(), 200);
    }
    assert_eq!(
        seen(&server.take_log()),
        vec![
            (
                "origin".into(),
                "/api/async".into(),
                fp.clone(),
                bearer.clone()
            ),
            (
                "other".into(),
                "/api/async-other".into(),
                None,
                bearer.clone()
            ),
        ]
    );
}

#[test]
fn a_plain_session_presents_no_certificate() {
    let pki = Pki::new("plain");
    let server = Server::start(&pki, &[]);
    let mut cfg = Config::default();
    for (k, v) in [
        ("client_id", "mtls-client"),
        ("client_secret", "s3cret"),
        ("token_url", &format!("{}/token", server.origin)),
        ("base_url", &server.origin),
        ("ca_file", &pki.path("ca.pem")),
        ("max_retries", "0"),
    ] {
        cfg.set(k, v).unwrap();
    }
    let err = Session::new(&cfg)
        .unwrap()
        .with_token(str::to_owned)
        .unwrap_err();
    assert_eq!(
        err.code,
        Code::CLOUDAUTH_ERR_AUTH_REJECTED,
        "{}",
        err.message
    );
    assert_eq!(
        seen(&server.take_log()),
        vec![("origin".into(), "/token".into(), None, None)]
    );
}

#[test]
fn every_key_type_and_a_chain_and_a_self_signed_certificate_work() {
    let pki = Pki::new("keys");
    let (self_cert, self_key) = pki.self_signed("selfsigned");
    // An intermediate CA: the server trusts only the root, so the chain must be sent.
    pki.issue("inter", Key::EcP256Sec1, "ca", "inter.ext");
    pki.issue("chained", Key::EcP256Sec1, "inter", "client.ext");
    let chain = pki.path("chain.pem");
    std::fs::write(&chain, pki.read("chained.pem") + &pki.read("inter.pem")).unwrap();
    let server = Server::start(&pki, &[&self_cert]);

    let mut cases: Vec<(&str, String, String)> = Vec::new();
    for (name, key) in [
        ("rsa-pkcs8", Key::RsaPkcs8),
        ("rsa-pkcs1", Key::RsaPkcs1),
        ("ec-p256-sec1", Key::EcP256Sec1),
        ("ec-p384", Key::EcP384Pkcs8),
        ("ed25519", Key::Ed25519),
    ] {
        let (cert, key) = pki.client(name, key);
        cases.push(("tls_client_auth", cert, key));
    }
    cases.push(("tls_client_auth", chain.clone(), pki.path("chained.key")));
    cases.push(("self_signed_tls_client_auth", self_cert.clone(), self_key));
    for (method, cert, key) in cases {
        let session = Session::new(&config(&pki, &server, method, &cert, &key))
            .unwrap_or_else(|e| panic!("{cert}: {}", e.message));
        assert_eq!(get(&session, "/api/k"), 200, "{cert}");
        let fp = Some(pki.fingerprint(&cert));
        let log = seen(&server.take_log());
        assert_eq!(log.len(), 2, "{cert}: {log:?}");
        assert!(log.iter().all(|r| r.2 == fp), "{cert}: {log:?}");
    }
}

#[test]
fn replacing_the_files_rotates_the_certificate_at_the_next_token_request() {
    let pki = Pki::new("rotate");
    let server = Server::start(&pki, &[]);
    let (cert1, key1) = pki.client("one", Key::EcP256Sec1);
    let (cert2, key2) = pki.client("two", Key::Ed25519);
    let (fp1, fp2) = (Some(pki.fingerprint(&cert1)), Some(pki.fingerprint(&cert2)));
    let (cert, key) = (pki.path("live.pem"), pki.path("live.key"));
    let install = |c: &str, k: &str| {
        // As a secret mount does: whole new files renamed over the old ones.
        std::fs::copy(c, pki.path("next.pem")).unwrap();
        std::fs::copy(k, pki.path("next.key")).unwrap();
        std::fs::rename(pki.path("next.pem"), &cert).unwrap();
        std::fs::rename(pki.path("next.key"), &key).unwrap();
    };
    install(&cert1, &key1);
    let session = Session::new(&config(&pki, &server, "tls_client_auth", &cert, &key)).unwrap();
    assert_eq!(get(&session, "/api/before"), 200);
    let certs = |log: Vec<Value>| -> Vec<(String, Option<String>)> {
        seen(&log).into_iter().map(|r| (r.1, r.2)).collect()
    };
    assert_eq!(
        certs(server.take_log()),
        vec![
            ("/token".into(), fp1.clone()),
            ("/api/before".into(), fp1.clone())
        ]
    );

    install(&cert2, &key2);
    // Until a token request reads the files again, the session keeps the certificate it has.
    assert_eq!(get(&session, "/api/still"), 200);
    session.invalidate();
    assert_eq!(get(&session, "/api/after"), 200);
    assert_eq!(
        certs(server.take_log()),
        vec![
            ("/api/still".into(), fp1.clone()),
            ("/token".into(), fp2.clone()),
            ("/api/after".into(), fp2.clone()),
        ]
    );

    // A broken replacement fails the token request, naming the key; a good one heals it.
    std::fs::write(&key, "not a key\n").unwrap();
    session.invalidate();
    let err = session.with_token(str::to_owned).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
    assert!(
        err.message.starts_with("client_key_file: "),
        "{}",
        err.message
    );
    install(&cert1, &key1);
    assert_eq!(get(&session, "/api/healed"), 200);
    assert_eq!(
        certs(server.take_log()),
        vec![
            ("/token".into(), fp1.clone()),
            ("/api/healed".into(), fp1.clone())
        ]
    );
}

#[test]
fn bad_files_are_refused_naming_the_key_and_never_quoting_it() {
    let pki = Pki::new("bad");
    let (cert, key) = pki.client("good", Key::EcP256Sec1);
    let (other_cert, other_key) = pki.client("other", Key::RsaPkcs8);
    let p8 = pki.path("enc-pkcs8.key");
    pki.run(&[
        "pkcs8",
        "-topk8",
        "-in",
        &key,
        "-out",
        &p8,
        "-v2",
        "aes-256-cbc",
        "-passout",
        "pass:pw",
    ]);
    let trad = pki.path("enc-trad.key");
    pki.run(&[
        "rsa",
        "-in",
        &other_key,
        "-out",
        &trad,
        "-aes256",
        "-passout",
        "pass:pw",
        "-traditional",
    ]);
    let p521 = pki.path("p521.key");
    pki.run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-521",
        "-out",
        &p521,
    ]);
    let garbled = pki.path("garbled.key");
    std::fs::write(
        &garbled,
        "-----BEGIN PRIVATE KEY-----\n!!not base64!!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let not_der = pki.path("notder.pem");
    std::fs::write(
        &not_der,
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = pki.path("missing.pem");
    let directory = pki.dir.to_str().unwrap().to_owned();

    // Every secret-bearing text that must never come back: each key's PEM lines.
    let key_lines: Vec<String> = [&key, &other_key, &p8, &trad, &p521]
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect();

    let cases: Vec<(&str, &str, &str, &str)> = vec![
        // (cert, key, the key the message names, what it says)
        (&missing, &key, "client_cert_file", "cannot read"),
        (&cert, &missing, "client_key_file", "cannot read"),
        (&cert, &directory, "client_key_file", "cannot read"),
        (&cert, &p8, "client_key_file", "is encrypted"),
        (&cert, &trad, "client_key_file", "is encrypted"),
        (&cert, &p521, "client_key_file", "not a usable"),
        (&cert, &cert, "client_key_file", "holds no PEM private key"),
        (&cert, &garbled, "client_key_file", "not a valid PEM file"),
        (
            &cert,
            &other_key,
            "client_key_file",
            "does not match the certificate",
        ),
        (
            &other_cert,
            &key,
            "client_key_file",
            "does not match the certificate",
        ),
        (&key, &key, "client_cert_file", "holds no PEM certificate"),
        (
            &not_der,
            &key,
            "client_cert_file",
            "not a valid X.509 certificate",
        ),
    ];
    let server_free = "https://127.0.0.1:9"; // nothing is sent: the checks run at session_new
    for (cert, key, named, says) in cases {
        let mut cfg = Config::default();
        for (k, v) in [
            ("client_id", "id"),
            ("auth_method", "tls_client_auth"),
            ("client_cert_file", cert),
            ("client_key_file", key),
            ("token_url", &format!("{server_free}/token")),
        ] {
            cfg.set(k, v).unwrap();
        }
        let err = Session::new(&cfg).err().unwrap();
        assert_eq!(
            err.code,
            Code::CLOUDAUTH_ERR_INVALID_ARGUMENT,
            "{}",
            err.message
        );
        assert!(
            err.message.starts_with(&format!("{named}: ")),
            "{}",
            err.message
        );
        assert!(err.message.contains(says), "{says}: {}", err.message);
        assert!(
            !err.message.contains("-----") && !err.message.contains('\n'),
            "{}",
            err.message
        );
        for line in &key_lines {
            assert!(!err.message.contains(line.as_str()), "{}", err.message);
        }
    }

    // Missing settings, and a secret that would never be sent.
    let mut cfg = Config::default();
    cfg.set("client_id", "id").unwrap();
    cfg.set("auth_method", "self_signed_tls_client_auth")
        .unwrap();
    let err = Session::new(&cfg).err().unwrap();
    assert!(
        err.message.starts_with("client_cert_file is not set"),
        "{}",
        err.message
    );
    cfg.set("client_cert_file", &cert).unwrap();
    let err = Session::new(&cfg).err().unwrap();
    assert!(
        err.message.starts_with("client_key_file is not set"),
        "{}",
        err.message
    );
    cfg.set("client_key_file", &key).unwrap();
    cfg.set("client_secret", "s3cret").unwrap();
    let err = Session::new(&cfg).err().unwrap();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
    assert!(
        err.message.starts_with("client_secret is set, but"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("s3cret"), "{}", err.message);

    // A session with good files refuses set_credentials: it has no secret to rotate.
    cfg.client_secret = None;
    let session = Session::new(&cfg).unwrap();
    let err = session.set_credentials("id", "secret").unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
    assert!(err.message.contains("client_cert_file"), "{}", err.message);
}

#[test]
fn discovery_sends_the_token_request_to_the_mtls_alias() {
    let pki = Pki::new("alias");
    let server = Server::start(&pki, &[]);
    let (cert, key) = pki.client("client", Key::EcP256Sec1);
    let fp = Some(pki.fingerprint(&cert));
    let mut cfg = Config::default();
    for (k, v) in [
        ("client_id", "mtls-client"),
        ("auth_method", "tls_client_auth"),
        ("client_cert_file", &cert),
        ("client_key_file", &key),
        ("issuer", &server.origin),
        ("base_url", &server.origin),
        ("ca_file", &pki.path("ca.pem")),
        ("max_retries", "0"),
    ] {
        cfg.set(k, v).unwrap();
    }
    let session = Session::new(&cfg).unwrap();
    assert_eq!(get(&session, "/api/x"), 200);
    let log = seen(&server.take_log());
    let wanted: Vec<(String, String, Option<String>)> = vec![
        // The metadata is public: fetched without the certificate.
        (
            "origin".into(),
            "/.well-known/oauth-authorization-server".into(),
            None,
        ),
        // RFC 8705 §5: the alias, not token_endpoint (/plain-token), with the certificate.
        ("other".into(), "/token".into(), fp.clone()),
        ("origin".into(), "/api/x".into(), fp.clone()),
    ];
    assert_eq!(
        log.into_iter().map(|r| (r.0, r.1, r.2)).collect::<Vec<_>>(),
        wanted
    );

    // A discovered plain-http endpoint cannot carry the certificate: refused, naming it.
    cfg.set("issuer", &server.control).unwrap();
    let err = Session::new(&cfg)
        .unwrap()
        .with_token(str::to_owned)
        .unwrap_err();
    assert_eq!(
        err.code,
        Code::CLOUDAUTH_ERR_INVALID_ARGUMENT,
        "{}",
        err.message
    );
    assert!(
        err.message.starts_with("token endpoint http://127.0.0.1:")
            && err.message.contains("needs https"),
        "{}",
        err.message
    );
}

#[test]
fn the_redirect_limit_counts_the_hops_of_both_clients() {
    let pki = Pki::new("limit");
    let server = Server::start(&pki, &[]);
    let (cert, key) = pki.client("client", Key::EcP256Sec1);
    let session = Session::new(&config(&pki, &server, "tls_client_auth", &cert, &key)).unwrap();
    session.with_token(str::to_owned).unwrap();
    server.take_log();
    for target in [
        "/loop".to_owned(),
        format!("/redirect?to={}/loop", server.other),
    ] {
        let err = session
            .request("GET", &target, std::iter::empty(), b"")
            .unwrap_err();
        assert_eq!(
            err.code,
            Code::CLOUDAUTH_ERR_NETWORK,
            "{target}: {}",
            err.message
        );
        assert!(err.message.contains("redirect"), "{}", err.message);
        // As one client would: ten requests, then the error.
        assert_eq!(server.take_log().len(), 10, "{target}");
    }
}

#[test]
fn a_background_refresh_presents_the_certificate_too() {
    let pki = Pki::new("refresh");
    let server = Server::start(&pki, &[]);
    let (cert, key) = pki.client("client", Key::EcP256Sec1);
    let fp = Some(pki.fingerprint(&cert));
    let mut cfg = config(&pki, &server, "tls_client_auth", &cert, &key);
    cfg.set("token_url", &format!("{}/token-short", server.origin))
        .unwrap();
    cfg.set("refresh_mode", "background").unwrap();
    let session = Session::new(&cfg).unwrap();
    let first = session.with_token(str::to_owned).unwrap();
    // A 2 s token is due for refresh after 1 s; the next use starts one on a library thread.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while session.with_token(str::to_owned).unwrap() == first {
        assert!(std::time::Instant::now() < deadline, "no refresh");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let seen = seen(&server.take_log());
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(
        seen.iter().all(|r| r.1 == "/token-short" && r.2 == fp),
        "{seen:?}"
    );
    assert!(session.stats().background_refreshes >= 1);
}

/// `/redirect` on `base` to `to` with `status` (and a delay before answering).
fn redirect(status: u16, to: &str, delay_ms: u64) -> String {
    let to: String = url::form_urlencoded::byte_serialize(to.as_bytes()).collect();
    format!("/redirect?status={status}&delay_ms={delay_ms}&to={to}")
}

/// (listener, method, path, certificate presented, Authorization sent, body) of each request.
fn hops(log: &[Value]) -> Vec<(String, String, String, bool, bool, String)> {
    log.iter()
        .filter(|r| r["path"] != "/token")
        .map(|r| {
            (
                r["listener"].as_str().unwrap().to_owned(),
                r["method"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
                r["cert"].is_string(),
                r["authorization"].is_string(),
                r["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn hop(
    listener: &str,
    method: &str,
    path: &str,
    cert_and_token: bool,
    body: &str,
) -> (String, String, String, bool, bool, String) {
    (
        listener.into(),
        method.into(),
        path.into(),
        cert_and_token,
        cert_and_token,
        body.into(),
    )
}

#[test]
fn redirects_on_the_certificate_bound_client_follow_rfc_9110() {
    let pki = Pki::new("rfc9110");
    let server = Server::start(&pki, &[]);
    let (cert, key) = pki.client("client", Key::EcP256Sec1);
    let session = Session::new(&config(&pki, &server, "tls_client_auth", &cert, &key)).unwrap();
    let send = |method: &str, target: &str, headers: &[&str], body: &[u8]| {
        let r = session
            .request(method, target, headers.iter().copied(), body)
            .unwrap_or_else(|e| panic!("{method} {target}: {e:?}"));
        assert_eq!(r.status, 200, "{method} {target}");
    };
    // PUT and DELETE keep method and body through 301 and 302; POST becomes a GET through
    // 302 and 303, without its body.
    for status in [301, 302] {
        for method in ["PUT", "DELETE"] {
            send(method, &redirect(status, "/items/", 0), &[], b"the item");
            assert_eq!(
                hops(&server.take_log()),
                vec![
                    hop("origin", method, "/redirect", true, "the item"),
                    hop("origin", method, "/items/", true, "the item"),
                ],
                "{method} through {status}"
            );
        }
    }
    for status in [302, 303] {
        send("POST", &redirect(status, "/orders/42", 0), &[], b"buy");
        assert_eq!(
            hops(&server.take_log()),
            vec![
                hop("origin", "POST", "/redirect", true, "buy"),
                hop("origin", "GET", "/orders/42", true, ""),
            ],
            "POST through {status}"
        );
    }
    // POST -> 303 -> 401: the GET is sent again with a fresh token, never the POST. The
    // session's first token is mtls-1-…, which /refuses-first-token refuses.
    send(
        "POST",
        &redirect(303, "/refuses-first-token", 0),
        &[],
        b"order",
    );
    let log = server.take_log();
    assert_eq!(
        hops(&log),
        vec![
            hop("origin", "POST", "/redirect", true, "order"),
            hop("origin", "GET", "/refuses-first-token", true, ""),
            hop("origin", "GET", "/refuses-first-token", true, ""),
        ]
    );
    let gets: Vec<&str> = log
        .iter()
        .filter(|r| r["method"] == "GET")
        .map(|r| r["authorization"].as_str().unwrap())
        .collect();
    assert!(gets[0].starts_with("Bearer mtls-1-") && gets[1].starts_with("Bearer mtls-2-"));
    // A 307/308 chain that leaves the origin after same-origin hops: the other origin gets
    // the PUT and its body, and no token, cookie or certificate.
    let landing = format!("{}/landing", server.other);
    let target = redirect(307, &redirect(308, &landing, 0), 0);
    send("PUT", &target, &["Cookie: c=1"], b"payload");
    let log = server.take_log();
    assert_eq!(
        hops(&log),
        vec![
            hop("origin", "PUT", "/redirect", true, "payload"),
            hop("origin", "PUT", "/redirect", true, "payload"),
            hop("other", "PUT", "/landing", false, "payload"),
        ]
    );
    assert_eq!(log[0]["cookie"], "c=1");
    assert!(log[2]["cookie"].is_null() && log[2]["dpop"].is_null());
}

#[test]
fn a_redirect_chain_on_the_certificate_bound_client_is_bounded_by_timeout_ms() {
    let pki = Pki::new("deadline");
    let server = Server::start(&pki, &[]);
    let (cert, key) = pki.client("client", Key::EcP256Sec1);
    let mut cfg = config(&pki, &server, "tls_client_auth", &cert, &key);
    cfg.set("timeout_ms", "1000").unwrap();
    let session = Session::new(&cfg).unwrap();
    session.with_token(str::to_owned).unwrap();
    // Three hops of 400 ms, the last one to the other origin (the plain client): each within
    // timeout_ms, the chain not.
    let last = format!("{}{}", server.other, redirect(302, "/end", 400));
    let target = redirect(302, &redirect(302, &last, 400), 400);
    let started = std::time::Instant::now();
    let err = session
        .request("GET", &target, std::iter::empty(), b"")
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_TIMEOUT, "{}", err.message);
    assert!(
        took >= std::time::Duration::from_millis(950)
            && took < std::time::Duration::from_millis(2500),
        "{took:?}"
    );
}
