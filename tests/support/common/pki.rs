//! A private CA, a leaf certificate for 127.0.0.1 signed by it, and the HTTPS token endpoint and
//! API of tests/support/tls_token_server.py serving it on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl {args:?}");
}

/// A private CA and a leaf certificate for 127.0.0.1 signed by it.
pub fn make_pki(dir: &Path) {
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cloudauth test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    );
}

/// The PKI in a fresh directory and the server using it; killed and removed on drop.
pub struct TlsServer {
    child: Child,
    pub dir: PathBuf,
    pub port: String,
}

impl TlsServer {
    pub fn start(name: &str) -> TlsServer {
        let dir = std::env::temp_dir().join(format!("cloudauth-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        make_pki(&dir);
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/tls_token_server.py"
        );
        let mut child = Command::new("python3")
            .args([
                script,
                dir.join("leaf.pem").to_str().unwrap(),
                dir.join("leaf.key").to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("PORT ").unwrap().to_owned();
        TlsServer { child, dir, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
