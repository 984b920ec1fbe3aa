//! The shared token caches (file and Redis) across real processes, against the stand-in and a
//! `redis-server` of our own on a loopback port: one token request for a whole fleet, and a
//! cache that never makes a call fail (corrupt, foreign, truncated or symlinked files, a dead,
//! stopped, full or password-protected Redis, another client secret).

#[path = "support/common/mod.rs"]
mod common;
#[path = "support/idp/mod.rs"]
mod idp_support;

use cloudauth::token::shared::{CacheReport, SharedCache};
use cloudauth::token::Token;
use cloudauth::Config;
use common::*;
use serde_json::json;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers: a private directory, a private redis-server, a recording reporter.

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cloudauth-shared-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

struct Redis {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    extra: Vec<String>,
}

impl Redis {
    fn start(password: Option<&str>) -> Redis {
        Redis::start_with(password, &[])
    }

    fn start_with(password: Option<&str>, extra: &[&str]) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Redis {
            child: None,
            port,
            password: password.map(str::to_owned),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        r.restart();
        r
    }

    fn restart(&mut self) {
        let mut cmd = Command::new("redis-server");
        let port = self.port.to_string();
        if self.extra.iter().any(|a| a == "--tls-cert-file") {
            cmd.args(["--port", "0", "--tls-port", &port]);
        } else {
            cmd.args(["--port", &port]);
        }
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        self.child = Some(cmd.spawn().expect(
            "redis-server runs (Debian package redis-server; scripts/ensure-deps.sh installs it)",
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    fn conn(&self) -> redis::RedisResult<redis::Connection> {
        let c =
            redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(c)
    }

    /// A command of our own, beside the library's connection.
    fn cli(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let mut c = self.conn()?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c)
    }

    /// Every key and value, as bytes.
    fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut c = self.conn().unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        keys.into_iter()
            .map(|k| {
                let v: Option<Vec<u8>> = redis::cmd("GET").arg(&k).query(&mut c).unwrap();
                (k, v.unwrap_or_default())
            })
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A stopped server must get SIGCONT to die promptly.
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.kill();
    }
}

#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<CacheReport>>>);

impl Reports {
    fn reporter(&self) -> cloudauth::token::shared::Reporter {
        let me = self.0.clone();
        Arc::new(move |r| me.lock().unwrap().push(r))
    }
    fn take(&self) -> Vec<CacheReport> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    fn hits(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| **r == CacheReport::Hit)
            .count()
    }
    fn errors(&self) -> Vec<(String, bool)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| match r {
                CacheReport::Error {
                    message,
                    outage_started,
                } => Some((message.clone(), *outage_started)),
                _ => None,
            })
            .collect()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The bytes of every file under `dir`.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect()
}

fn entry_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "token"))
        .expect("an entry file")
}

/// A cache over `extra` keys, with a token endpoint that counts (the stand-in's config).
struct Case {
    cfg: Config,
    reports: Reports,
    cache: SharedCache,
    fetches: AtomicUsize,
}

impl Case {
    fn new(server: &StandIn, extra: &[(&str, &str)]) -> Case {
        Case::with_secret(server, extra, SECRET)
    }

    fn with_secret(server: &StandIn, extra: &[(&str, &str)], secret: &str) -> Case {
        let cfg = server.config(extra);
        let reports = Reports::default();
        let endpoint = cloudauth::session::endpoint_settings(&cfg);
        let settings = cloudauth::session::cache_settings(&cfg, &endpoint);
        let cache = SharedCache::new(&settings, None, secret.as_bytes(), reports.reporter())
            .unwrap()
            .expect("a shared cache");
        Case {
            cfg,
            reports,
            cache,
            fetches: AtomicUsize::new(0),
        }
    }

    /// A token through the cache; a miss fetches a fresh one named after the count.
    fn token(&self) -> String {
        self.cache
            .get_or_fetch(|| {
                static MINTED: AtomicUsize = AtomicUsize::new(0);
                self.fetches.fetch_add(1, Ordering::SeqCst);
                let n = MINTED.fetch_add(1, Ordering::SeqCst);
                Token::new(
                    format!("eyJtoken-{n}-{}", std::process::id()),
                    Duration::from_secs(3600),
                    self.cfg.refresh_skew,
                    Instant::now(),
                )
            })
            .unwrap()
            .value()
            .to_owned()
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// Many processes at once: the child side, then the cases.

/// Run as a child process by the fleet tests (does nothing in a normal test run): waits at the
/// barrier, gets a token through a session, prints it.
#[test]
fn fleet_child() {
    let Ok(cfg_lines) = std::env::var("FLEET_CFG") else {
        return;
    };
    let mut cfg = Config::default();
    for line in cfg_lines.lines() {
        let (k, v) = line.split_once('=').unwrap();
        cfg.set(k, v).unwrap();
    }
    let dir = PathBuf::from(std::env::var("FLEET_BARRIER").unwrap());
    let me = std::env::var("FLEET_INDEX").unwrap();
    let session = cloudauth::Session::new(&cfg).unwrap();
    std::fs::write(dir.join(format!("ready-{me}")), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("go").exists() {
        assert!(Instant::now() < deadline, "no go signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    let t = token(&session).unwrap();
    println!("FLEET-TOKEN {t}");
}

/// Starts one child per config at the same moment; returns the token each got.
fn fleet(configs: &[Vec<(String, String)>], envs: &[Vec<(&str, String)>]) -> Vec<String> {
    let barrier = temp_dir("barrier");
    let children: Vec<Child> = configs
        .iter()
        .zip(envs)
        .enumerate()
        .map(|(i, (cfg, env))| {
            let lines: Vec<String> = cfg.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "fleet_child", "--nocapture", "--test-threads=1"])
                .env("FLEET_CFG", lines.join("\n"))
                .env("FLEET_BARRIER", &barrier)
                .env("FLEET_INDEX", i.to_string())
                .envs(env.iter().map(|(k, v)| (*k, v)))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_dir(&barrier).unwrap().count() < configs.len() {
        assert!(Instant::now() < deadline, "the children did not get ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(barrier.join("go"), b"").unwrap();
    let tokens = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "a child failed: {:?}", out.status);
            let stdout = String::from_utf8_lossy(&out.stdout);
            stdout
                .lines()
                .find_map(|l| {
                    let at = l.find("FLEET-TOKEN ")? + "FLEET-TOKEN ".len();
                    Some(l[at..].trim().to_owned())
                })
                .unwrap_or_else(|| panic!("the child printed no token: {stdout}"))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&barrier);
    tokens
}

fn base_cfg(server: &StandIn, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut cfg: Vec<(String, String)> = [
        ("client_id", CLIENT_ID.to_string()),
        ("client_secret", SECRET.to_string()),
        ("token_url", format!("{}/connect/token", server.url)),
        ("base_url", server.url.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    cfg.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    cfg
}

#[test]
fn forty_processes_with_the_file_cache_make_one_token_request() {
    let server = StandIn::start();
    // A slow endpoint: every child arrives while the first fetch is in flight.
    server.configure(json!({"token_delay_ms": 300}));
    let root = temp_dir("fleet-file");
    let dir = root.join("nested").join("cloudauth");
    let dir_s = dir.to_str().unwrap();
    let cfg = base_cfg(
        &server,
        &[("token_cache", "file"), ("token_cache_dir", dir_s)],
    );
    let tokens = fleet(&vec![cfg; 40], &vec![vec![]; 40]);
    assert_eq!(server.token_requests(), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "all got one token");

    // Created 0700 (the directory) and 0600 (the entry and the lock), owned by us.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let found = files(&dir);
    assert_eq!(found.len(), 2, "one entry and one lock file: {found:?}");
    for (path, bytes) in &found {
        assert_eq!(mode(path), 0o600, "{}", path.display());
        assert!(
            !contains(bytes, &tokens[0]),
            "token in plain text in {}",
            path.display()
        );
        assert!(
            !contains(bytes, SECRET),
            "secret in plain text in {}",
            path.display()
        );
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains(CLIENT_ID) && !name.contains(SECRET),
            "{name}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn three_groups_sharing_only_redis_make_one_token_request() {
    let server = StandIn::start();
    server.configure(json!({"token_delay_ms": 300}));
    let redis = Redis::start(Some("fleet-pass-123"));
    let url = redis.url();
    let cfg = base_cfg(&server, &[("token_cache", "redis"), ("redis_url", &url)]);
    // Three "hosts": their own cache directories and homes, nothing shared but Redis.
    let homes: Vec<PathBuf> = (0..3).map(|_| temp_dir("fleet-host")).collect();
    let envs: Vec<Vec<(&str, String)>> = (0..30)
        .map(|i| {
            let home = homes[i % 3].to_str().unwrap().to_string();
            vec![("HOME", home.clone()), ("XDG_CACHE_HOME", home)]
        })
        .collect();
    let tokens = fleet(&vec![cfg; 30], &envs);
    assert_eq!(server.token_requests(), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]));

    // Redis holds the entry (its lock is released), sealed: no token, secret or id in clear.
    let dump = redis.dump();
    assert_eq!(
        dump.len(),
        1,
        "only the entry is left: {:?}",
        dump.iter()
            .map(|d| String::from_utf8_lossy(&d.0).into_owned())
            .collect::<Vec<_>>()
    );
    for (k, v) in &dump {
        for bytes in [k, v] {
            assert!(!contains(bytes, &tokens[0]));
            assert!(!contains(bytes, SECRET));
            assert!(!contains(bytes, CLIENT_ID));
        }
    }
    // Its TTL ends at the token's refresh point (3600 s - 60 s skew), not later.
    let key = String::from_utf8(dump[0].0.clone()).unwrap();
    let ttl = redis.cli(&["PTTL", &key]).unwrap();
    let redis::Value::Int(ttl) = ttl else {
        panic!("{ttl:?}")
    };
    assert!(ttl > 3_500_000 && ttl <= 3_540_000, "ttl {ttl}");
    for h in homes {
        assert!(
            std::fs::read_dir(&h).unwrap().next().is_none(),
            "nothing written to {}",
            h.display()
        );
        let _ = std::fs::remove_dir_all(h);
    }
}

// ---------------------------------------------------------------------------------------------
// The file cache never fails a call.

#[test]
fn damaged_or_foreign_cache_files_mean_fetching_directly() {
    let server = StandIn::start();
    let dir = temp_dir("damage");
    let d = dir.to_str().unwrap();
    let extra = [("token_cache", "file"), ("token_cache_dir", d)];
    let first = Case::new(&server, &extra);
    let t1 = first.token();
    assert_eq!(first.fetches(), 1);
    // Another process (a new cache) finds it.
    let second = Case::new(&server, &extra);
    assert_eq!(second.token(), t1);
    assert_eq!((second.fetches(), second.reports.hits()), (0, 1));

    let entry = entry_file(&dir);
    let good = std::fs::read(&entry).unwrap();
    type Damage<'a> = Box<dyn Fn() + 'a>;
    let damages: Vec<(&str, Damage)> = vec![
        (
            "corrupted",
            Box::new(|| {
                let mut bad = good.clone();
                bad[good.len() / 2] ^= 1;
                std::fs::write(&entry, bad).unwrap();
            }),
        ),
        (
            "truncated",
            Box::new(|| std::fs::write(&entry, &good[..good.len() / 3]).unwrap()),
        ),
        ("empty", Box::new(|| std::fs::write(&entry, b"").unwrap())),
        (
            "foreign",
            Box::new(|| std::fs::write(&entry, b"{\"access_token\":\"x\"}").unwrap()),
        ),
        (
            "a directory",
            Box::new(|| {
                std::fs::remove_file(&entry).unwrap();
                std::fs::create_dir(&entry).unwrap();
            }),
        ),
        (
            "unreadable",
            Box::new(|| {
                std::fs::write(&entry, &good).unwrap();
                std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o000)).unwrap();
            }),
        ),
    ];
    for (what, damage) in damages {
        let _ = std::fs::remove_dir(&entry);
        damage();
        let c = Case::new(&server, &extra);
        let t = c.token();
        // Unreadable is still readable for root: then it is a plain hit.
        let root_read = what == "unreadable" && std::fs::read(&entry).is_ok();
        if root_read {
            assert_eq!((t.as_str(), c.fetches()), (t1.as_str(), 0), "{what}");
        } else {
            assert_eq!(c.fetches(), 1, "{what}: fetched directly");
            let errors = c.reports.errors();
            assert!(!errors.is_empty(), "{what}: reported");
            assert!(errors[0].1, "{what}: an outage starts");
            for (m, _) in &errors {
                assert!(
                    !m.contains(SECRET) && !m.contains("eyJ") && !m.contains('\n'),
                    "{m}"
                );
            }
            // Damaged bytes are replaced by the fetched token: the next process hits. (An entry
            // that cannot be read at all is left alone, and the calls go on without it.)
            let next = Case::new(&server, &extra);
            if !matches!(what, "a directory" | "unreadable") {
                assert_eq!(next.token(), t, "{what}: healed");
                assert_eq!(next.fetches(), 0, "{what}");
            }
        }
        let _ = std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600));
    }
}

#[test]
fn a_symlinked_entry_is_never_followed() {
    let server = StandIn::start();
    let dir = temp_dir("symlink");
    let d = dir.to_str().unwrap();
    let extra = [("token_cache", "file"), ("token_cache_dir", d)];
    let first = Case::new(&server, &extra);
    first.token();
    let entry = entry_file(&dir);
    let good = std::fs::read(&entry).unwrap();
    // A valid entry elsewhere, linked in: refused, never read, never written through.
    let target = temp_dir("symlink-target").join("victim");
    std::fs::write(&target, &good).unwrap();
    std::fs::remove_file(&entry).unwrap();
    symlink(&target, &entry).unwrap();
    let c = Case::new(&server, &extra);
    c.token();
    assert_eq!(c.fetches(), 1);
    assert!(
        c.reports.errors()[0].0.contains("symlink"),
        "{:?}",
        c.reports.errors()
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        good,
        "the target is untouched"
    );
    // Still refused by the next process, never followed.
    let c = Case::new(&server, &extra);
    c.token();
    assert_eq!(c.fetches(), 1);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        good,
        "the target is untouched"
    );

    // A symlinked, foreign-owned or world-writable directory is refused as a whole.
    let real = temp_dir("real-dir");
    let link = dir.join("linked");
    symlink(&real, &link).unwrap();
    let c = Case::new(
        &server,
        &[
            ("token_cache", "file"),
            ("token_cache_dir", link.to_str().unwrap()),
        ],
    );
    c.token();
    assert_eq!(c.fetches(), 1);
    assert!(c.reports.errors()[0].0.contains("symlink"));
    assert!(
        std::fs::read_dir(&real).unwrap().next().is_none(),
        "nothing written through the link"
    );
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
    let c = Case::new(
        &server,
        &[
            ("token_cache", "file"),
            ("token_cache_dir", real.to_str().unwrap()),
        ],
    );
    c.token();
    assert_eq!(c.fetches(), 1);
    assert!(c.reports.errors()[0].0.contains("writable by other users"));
    if std::fs::metadata(&dir).unwrap().uid() == 0 {
        // As root we can hand the entry to another user: it must then be refused.
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let c = Case::new(
            &server,
            &[
                ("token_cache", "file"),
                ("token_cache_dir", real.to_str().unwrap()),
            ],
        );
        c.token();
        let e = entry_file(&real);
        std::os::unix::fs::chown(&e, Some(65534), Some(65534)).unwrap();
        let c = Case::new(
            &server,
            &[
                ("token_cache", "file"),
                ("token_cache_dir", real.to_str().unwrap()),
            ],
        );
        c.token();
        assert_eq!(c.fetches(), 1);
        assert!(c.reports.errors()[0].0.contains("owned by uid 65534"));
    }
}

#[test]
fn an_unusable_directory_is_one_outage_then_the_cache_comes_back() {
    let server = StandIn::start();
    let root = temp_dir("outage");
    // A regular file where the directory should be: every operation fails.
    let dir = root.join("cache");
    std::fs::write(&dir, b"not a directory").unwrap();
    let c = Case::new(
        &server,
        &[
            ("token_cache", "file"),
            ("token_cache_dir", dir.to_str().unwrap()),
        ],
    );
    let mut got = vec![];
    for _ in 0..3 {
        got.push(c.token());
    }
    assert_eq!(c.fetches(), 3);
    let errors = c.reports.errors();
    assert!(errors.len() >= 3);
    assert_eq!(
        errors.iter().filter(|e| e.1).count(),
        1,
        "one outage: {errors:?}"
    );
    assert!(
        errors[0].0.starts_with("file token cache"),
        "{}",
        errors[0].0
    );
    // Back: the directory exists again; the first call stores, the next process hits.
    std::fs::remove_file(&dir).unwrap();
    c.reports.take();
    let stored = c.token();
    assert!(c.reports.errors().is_empty());
    let next = Case::new(
        &server,
        &[
            ("token_cache", "file"),
            ("token_cache_dir", dir.to_str().unwrap()),
        ],
    );
    assert_eq!(next.token(), stored);
    // A new failure after the recovery is a new outage.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"x").unwrap();
    c.token();
    assert!(c.reports.errors()[0].1, "a new outage is announced");
    // A directory that cannot be created at all.
    let c = Case::new(
        &server,
        &[
            ("token_cache", "file"),
            ("token_cache_dir", "/proc/no/such/dir"),
        ],
    );
    c.token();
    assert_eq!(c.fetches(), 1);
}

#[test]
fn another_secret_cannot_use_the_entry_and_a_401_removes_only_the_rejected_token() {
    let server = StandIn::start();
    let dir = temp_dir("secret");
    let extra = [
        ("token_cache", "file"),
        ("token_cache_dir", dir.to_str().unwrap()),
    ];
    let a = Case::new(&server, &extra);
    let ta = a.token();
    let b = Case::with_secret(&server, &extra, "another-secret");
    let tb = b.token();
    assert_ne!(ta, tb);
    assert_eq!(b.fetches(), 1);
    assert!(
        b.reports.errors()[0].0.contains("another client secret"),
        "{:?}",
        b.reports.errors()
    );
    // After a rotation to b's secret, a reads b's entry.
    a.cache.use_credentials(CLIENT_ID, b"another-secret");
    assert_eq!(a.token(), tb);
    assert_eq!(a.fetches(), 1);
    // Another client id is another entry.
    a.cache.use_credentials("another-client", b"another-secret");
    assert_ne!(a.token(), tb);
    assert_eq!(a.fetches(), 2);
    a.cache.use_credentials(CLIENT_ID, SECRET.as_bytes());
    // b stored its own; a (new process) cannot open it either, fetches and stores again.
    let a2 = Case::new(&server, &extra);
    let ta2 = a2.token();
    assert_eq!(a2.fetches(), 1);
    // remove_if spares a token that is not the rejected one…
    a2.cache.remove_if(&ta);
    let a3 = Case::new(&server, &extra);
    assert_eq!(a3.token(), ta2);
    // …and removes the rejected one.
    a3.cache.remove_if(&ta2);
    let a4 = Case::new(&server, &extra);
    assert_ne!(a4.token(), ta2);
    assert_eq!(a4.fetches(), 1);
}

#[test]
fn sessions_share_the_file_cache_end_to_end() {
    let server = StandIn::start();
    let dir = temp_dir("session");
    let extra = [
        ("token_cache", "file"),
        ("token_cache_dir", dir.to_str().unwrap()),
    ];
    let s1 = server.session(&extra);
    let t = token(&s1).unwrap();
    let s2 = server.session(&extra);
    assert_eq!(token(&s2).unwrap(), t);
    assert_eq!(server.token_requests(), 1);
    // A 401 drops the token from the shared cache as well: the retry (and the next process)
    // get a new one.
    server.revoke();
    let r = get(&s2, "/headers").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(server.token_requests(), 2);
    let s3 = server.session(&extra);
    assert_ne!(token(&s3).unwrap(), t);
    assert_eq!(server.token_requests(), 2);
    // invalidate() means a new token, not the shared one read back.
    s3.invalidate();
    token(&s3).unwrap();
    assert_eq!(server.token_requests(), 3);
    // token_cache=redis without a URL is refused at session creation.
    let err = cloudauth::Session::new(&server.config(&[("token_cache", "redis")]))
        .err()
        .unwrap();
    assert_eq!(err.code, cloudauth::Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
}

// ---------------------------------------------------------------------------------------------
// Redis: outages of every kind, never a failed call.

#[test]
fn redis_killed_and_restarted_mid_run() {
    let server = StandIn::start();
    let mut redis = Redis::start(None);
    let url = redis.url();
    let c = Case::new(&server, &[("token_cache", "redis"), ("redis_url", &url)]);
    let t1 = c.token();
    let other = Case::new(&server, &[("token_cache", "redis"), ("redis_url", &url)]);
    assert_eq!(other.token(), t1);
    assert_eq!(other.reports.hits(), 1);

    redis.kill();
    let started = Instant::now();
    let down: Vec<String> = (0..3).map(|_| c.token()).collect();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.fetches(), 4, "each call fetched directly");
    let errors = c.reports.errors();
    assert_eq!(
        errors.iter().filter(|e| e.1).count(),
        1,
        "one outage: {errors:?}"
    );
    assert!(
        errors[0]
            .0
            .starts_with("redis token cache redis://127.0.0.1:"),
        "{}",
        errors[0].0
    );

    redis.restart(); // empty again (no persistence)
    c.reports.take();
    let t = c.token(); // reconnects, stores
    assert!(c.reports.errors().is_empty(), "{:?}", c.reports.errors());
    assert_ne!(t, down[2]);
    let again = Case::new(&server, &[("token_cache", "redis"), ("redis_url", &url)]);
    assert_eq!(again.token(), t);
    // The kept connection of `other` died with the first server: it reconnects silently.
    redis.restart_keep(&other, &t);
}

impl Redis {
    /// `case` kept a connection to a server since killed: the next use reconnects and hits.
    fn restart_keep(&self, case: &Case, expected: &str) {
        case.reports.take();
        assert_eq!(case.token(), expected);
        assert_eq!(case.reports.hits(), 1);
        assert!(
            case.reports.errors().is_empty(),
            "{:?}",
            case.reports.errors()
        );
    }
}

#[test]
fn a_stopped_redis_costs_at_most_the_cache_timeout() {
    let server = StandIn::start();
    let redis = Redis::start(None);
    let url = redis.url();
    let c = Case::new(
        &server,
        &[
            ("token_cache", "redis"),
            ("redis_url", &url),
            ("token_cache_timeout_ms", "200"),
        ],
    );
    c.token();
    // SIGSTOP: connections are accepted by the kernel, nothing answers.
    Command::new("kill")
        .args(["-STOP", &redis.pid().to_string()])
        .status()
        .unwrap();
    let fresh = Case::new(
        &server,
        &[
            ("token_cache", "redis"),
            ("redis_url", &url),
            ("token_cache_timeout_ms", "200"),
        ],
    );
    let started = Instant::now();
    fresh.token();
    let took = started.elapsed();
    Command::new("kill")
        .args(["-CONT", &redis.pid().to_string()])
        .status()
        .unwrap();
    assert_eq!(fresh.fetches(), 1);
    assert!(took < Duration::from_millis(1200), "took {took:?}");
    assert!(fresh.reports.errors()[0].1);
}

#[test]
fn a_wrong_redis_password_is_reported_without_the_password() {
    let server = StandIn::start();
    let redis = Redis::start(Some("right-pass-42"));
    let wrong = format!("redis://:wrong-pass-17@127.0.0.1:{}/0", redis.port);
    let c = Case::new(&server, &[("token_cache", "redis"), ("redis_url", &wrong)]);
    c.token();
    c.token();
    assert_eq!(c.fetches(), 2);
    let errors = c.reports.errors();
    assert_eq!(errors.iter().filter(|e| e.1).count(), 1);
    for (m, _) in &errors {
        assert!(
            !m.contains("wrong-pass-17") && !m.contains("right-pass"),
            "{m}"
        );
        assert!(m.contains("127.0.0.1"), "{m}");
    }
    // No password at all against a server that wants one: the same.
    let none = format!("redis://127.0.0.1:{}/0", redis.port);
    let c = Case::new(&server, &[("token_cache", "redis"), ("redis_url", &none)]);
    c.token();
    assert_eq!(c.fetches(), 1);
    assert!(!c.reports.errors().is_empty());
    // The right one works, and keeps no secret in the clear.
    let ok = Case::new(
        &server,
        &[("token_cache", "redis"), ("redis_url", &redis.url())],
    );
    let t = ok.token();
    assert!(ok.reports.errors().is_empty());
    for (k, v) in redis.dump() {
        assert!(!contains(&k, &t) && !contains(&v, &t) && !contains(&v, SECRET));
    }
}

#[test]
fn a_full_redis_is_one_outage_and_other_secrets_cannot_read_entries() {
    let server = StandIn::start();
    let redis = Redis::start(None);
    let url = redis.url();
    let extra = [("token_cache", "redis"), ("redis_url", url.as_str())];
    let a = Case::new(&server, &extra);
    let ta = a.token();
    let b = Case::with_secret(&server, &extra, "another-secret");
    assert_ne!(b.token(), ta);
    assert!(b.reports.errors()[0].0.contains("another client secret"));
    // remove_if: compare-and-delete, only the rejected token goes.
    let a2 = Case::new(&server, &extra);
    let current = a2.token(); // b's entry cannot be opened: a2 fetched and stored its own
    a2.cache.remove_if("eyJnot-the-current-one");
    let a3 = Case::new(&server, &extra);
    assert_eq!(a3.token(), current);
    a3.cache.remove_if(&current);
    let a4 = Case::new(&server, &extra);
    assert_ne!(a4.token(), current);
    assert_eq!(a4.fetches(), 1);

    // Full: writes fail (OOM), reads work. Each call fetches; one outage in all.
    redis.cli(&["FLUSHALL"]).unwrap();
    redis.cli(&["CONFIG", "SET", "maxmemory", "1"]).unwrap();
    let c = Case::new(&server, &extra);
    for _ in 0..3 {
        c.token();
    }
    assert_eq!(c.fetches(), 3);
    let errors = c.reports.errors();
    assert!(errors.len() >= 3, "{errors:?}");
    assert_eq!(errors.iter().filter(|e| e.1).count(), 1, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.0.contains("OOM") || e.0.contains("memory")),
        "{errors:?}"
    );
}

#[test]
fn a_fork_child_uses_its_own_redis_connection() {
    let server = StandIn::start();
    let redis = Redis::start(None);
    let url = redis.url();
    let c = Case::new(&server, &[("token_cache", "redis"), ("redis_url", &url)]);
    let t = c.token(); // the parent now keeps a connection
    let before = redis.connections();
    // SAFETY: the child only runs the cache call and _exits; glibc keeps malloc usable after
    // fork, and the library abandons what it inherited.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        c.reports.take();
        let ok = c.token() == t && c.reports.hits() == 1 && c.reports.errors().is_empty();
        unsafe { libc::_exit(if ok { 0 } else { 3 }) };
    }
    assert!(pid > 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    loop {
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if Instant::now() > deadline {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the fork child hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
    // The parent's connection was not used by the child: it still works, without an error.
    c.reports.take();
    assert_eq!(c.token(), t);
    assert!(c.reports.errors().is_empty(), "{:?}", c.reports.errors());
    // The child opened one connection of its own; the parent kept its one. (`connections`
    // opens one itself each time.)
    assert_eq!(redis.connections() - before, 2);
}

impl Redis {
    fn connections(&self) -> u64 {
        let info = match self.cli(&["INFO", "stats"]).unwrap() {
            redis::Value::VerbatimString { text, .. } => text,
            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("{other:?}"),
        };
        info.lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("total_connections_received")
    }
}

#[test]
fn rediss_verifies_the_server_against_ca_file() {
    let server = StandIn::start();
    let pki = temp_dir("pki");
    let script = "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > leaf.ext &&
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=cloudauth test CA' &&
        openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1 &&
        openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext";
    let ok = Command::new("sh")
        .args(["-c", script])
        .current_dir(&pki)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl made the test PKI");
    let file = |n: &str| pki.join(n).to_str().unwrap().to_string();
    let (cert, key, ca) = (file("leaf.pem"), file("leaf.key"), file("ca.pem"));
    let redis = Redis::start_with(
        Some("tls-pass-9"),
        &[
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ],
    );
    let url = format!("rediss://:tls-pass-9@127.0.0.1:{}/0", redis.port);
    // What is tested is trust, not speed: a TLS handshake of this debug build on a loaded
    // machine can take longer than the default 250 ms.
    let extra = [
        ("token_cache", "redis"),
        ("redis_url", url.as_str()),
        ("ca_file", ca.as_str()),
        ("token_cache_timeout_ms", "5000"),
    ];
    let a = Case::new(&server, &extra);
    let t = a.token();
    assert!(a.reports.errors().is_empty(), "{:?}", a.reports.errors());
    let b = Case::new(&server, &extra);
    assert_eq!(b.token(), t);
    assert_eq!((b.fetches(), b.reports.hits()), (0, 1));
    // Without our CA the server is not trusted: fetched directly, reported, no password shown.
    let untrusted = Case::new(
        &server,
        &[("token_cache", "redis"), ("redis_url", url.as_str())],
    );
    untrusted.token();
    assert_eq!(untrusted.fetches(), 1);
    let errors = untrusted.reports.errors();
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|(m, _)| !m.contains("tls-pass-9")),
        "{errors:?}"
    );
    // Plain redis:// to the TLS port fails the same harmless way.
    let plain = format!("redis://:tls-pass-9@127.0.0.1:{}/0", redis.port);
    let c = Case::new(
        &server,
        &[
            ("token_cache", "redis"),
            ("redis_url", plain.as_str()),
            ("token_cache_timeout_ms", "300"),
        ],
    );
    c.token();
    assert_eq!(c.fetches(), 1);
}

#[test]
fn refresh_ahead_is_one_request_for_all_processes() {
    let server = StandIn::start();
    // 6 s tokens: the refresh point is at 3 s (the skew is capped at half the lifetime).
    server.configure(json!({"token_expires_in": 6}));
    let dir = temp_dir("refresh");
    let extra = [
        ("token_cache", "file"),
        ("token_cache_dir", dir.to_str().unwrap()),
    ];
    let sessions: Vec<_> = (0..3).map(|_| server.session(&extra)).collect();
    let first: Vec<String> = sessions.iter().map(|s| token(s).unwrap()).collect();
    assert!(first.iter().all(|t| *t == first[0]));
    assert_eq!(server.token_requests(), 1);
    std::thread::sleep(Duration::from_millis(3300));
    // Inline or in the background, every session moves to the new token soon.
    let deadline = Instant::now() + Duration::from_secs(2);
    let second = loop {
        let now: Vec<String> = sessions.iter().map(|s| token(s).unwrap()).collect();
        if now.iter().all(|t| *t != first[0]) || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        second.iter().all(|t| *t == second[0] && *t != first[0]),
        "{second:?}"
    );
    assert_eq!(server.token_requests(), 2, "one refresh for all");
}

#[test]
fn a_lock_held_too_long_is_waited_for_at_most_one_token_request() {
    let server = StandIn::start();
    // A token request may take 400 ms here (timeout 400 ms, no retries).
    let bound = [("timeout_ms", "400"), ("max_retries", "0")];
    let dir = temp_dir("held");
    let mut extra = vec![
        ("token_cache", "file"),
        ("token_cache_dir", dir.to_str().unwrap()),
    ];
    extra.extend(bound);
    let c = Case::new(&server, &extra);
    c.token();
    let lock_path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "lock"))
        .unwrap();
    std::fs::remove_file(entry_file(&dir)).unwrap();
    // Another "process" holds the lock and never finishes.
    let holder = std::fs::OpenOptions::new()
        .write(true)
        .open(&lock_path)
        .unwrap();
    holder.lock().unwrap();
    let waiter = Case::new(&server, &extra);
    let started = Instant::now();
    waiter.token();
    let waited = started.elapsed();
    assert_eq!(waiter.fetches(), 1);
    assert!(
        waited >= Duration::from_millis(390) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );
    assert!(
        waiter.reports.errors().is_empty(),
        "waiting is not a cache failure"
    );
    holder.unlock().unwrap();
    // The waiter stored what it fetched.
    let next = Case::new(&server, &extra);
    next.token();
    assert_eq!(next.fetches(), 0);

    // Redis: a lock whose holder died keeps its PX; waiters give up after the same bound.
    let redis = Redis::start(None);
    let url = redis.url();
    let mut extra = vec![("token_cache", "redis"), ("redis_url", url.as_str())];
    extra.extend(bound);
    let c = Case::new(&server, &extra);
    c.token();
    let key = String::from_utf8(redis.dump()[0].0.clone()).unwrap();
    redis.cli(&["DEL", &key]).unwrap();
    redis
        .cli(&["SET", &format!("{key}:lock"), "someone-else", "PX", "60000"])
        .unwrap();
    let waiter = Case::new(&server, &extra);
    let started = Instant::now();
    waiter.token();
    let waited = started.elapsed();
    assert_eq!(waiter.fetches(), 1);
    assert!(
        waited >= Duration::from_millis(390) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );
    // The other holder's lock is not released by the waiter (compare-and-delete).
    let mark = redis.cli(&["GET", &format!("{key}:lock")]).unwrap();
    assert_eq!(mark, redis::Value::BulkString(b"someone-else".to_vec()));
}

#[test]
fn sessions_count_hits_and_errors_and_announce_an_outage_once() {
    let server = StandIn::start();
    let dir = temp_dir("stats");
    let extra = [
        ("token_cache", "file"),
        ("token_cache_dir", dir.to_str().unwrap()),
    ];
    let s1 = server.session(&extra);
    token(&s1).unwrap();
    let s2 = server.session(&extra);
    token(&s2).unwrap();
    let stats = s2.stats();
    assert_eq!((stats.shared_cache_hits, stats.shared_cache_errors), (1, 0));
    assert_eq!(s1.stats().shared_cache_hits, 0);

    // A broken cache directory: every fetch goes on without it, one event in all.
    let broken = dir.join("not-a-dir");
    std::fs::write(&broken, b"x").unwrap();
    let seen: Arc<Mutex<Vec<(cloudauth::events::EventKind, String)>>> = Arc::default();
    let mut cfg = server.config(&[
        ("token_cache", "file"),
        ("token_cache_dir", broken.to_str().unwrap()),
    ]);
    let sink = seen.clone();
    cfg.events =
        cloudauth::events::Events::new(Some(Arc::new(move |e: &cloudauth::events::Event<'_>| {
            sink.lock().unwrap().push((e.kind, e.message.to_owned()))
        })));
    let s = cloudauth::Session::new(&cfg).unwrap();
    for _ in 0..3 {
        token(&s).unwrap();
        s.invalidate();
    }
    let stats = s.stats();
    assert!(stats.shared_cache_errors >= 3, "{stats:?}");
    assert_eq!(stats.shared_cache_hits, 0);
    let seen = seen.lock().unwrap();
    let outages: Vec<_> = seen
        .iter()
        .filter(|(k, _)| *k == cloudauth::events::EventKind::CacheUnavailable)
        .collect();
    assert_eq!(outages.len(), 1, "{seen:?}");
    assert!(
        outages[0].1.starts_with("file token cache"),
        "{}",
        outages[0].1
    );
    assert!(!outages[0].1.contains(SECRET));
}

/// A token minted by a holder whose fetch takes `took`.
fn slow_token(name: &str, took: Duration) -> cloudauth::Result<Token> {
    std::thread::sleep(took);
    Token::new(
        name.to_owned(),
        Duration::from_secs(3600),
        Duration::from_secs(60),
        Instant::now(),
    )
}

#[test]
fn a_redis_lock_holder_that_died_delays_others_by_at_most_the_cache_timeout() {
    let server = StandIn::start();
    let redis = Redis::start(None);
    let url = redis.url();
    // A token request may take 3 × 5 s here; one cache operation 400 ms.
    let extra = [
        ("token_cache", "redis"),
        ("redis_url", url.as_str()),
        ("timeout_ms", "5000"),
        ("max_retries", "2"),
        ("token_cache_timeout_ms", "400"),
    ];
    let holder = Case::new(&server, &extra);
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only takes the lock, says so and sleeps until it is killed.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let _ = holder.cache.get_or_fetch(|| {
            unsafe { libc::write(fds[1], b"L".as_ptr().cast(), 1) };
            slow_token("never", Duration::from_secs(60))
        });
        unsafe { libc::_exit(3) };
    }
    assert!(pid > 0);
    unsafe { libc::close(fds[1]) };
    let mut byte = 0u8;
    // Blocks until the child holds the lock (or ends: then 0 bytes and the test fails).
    let n = unsafe { libc::read(fds[0], (&mut byte as *mut u8).cast(), 1) };
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    unsafe { libc::close(fds[0]) };
    assert_eq!((n, byte), (1, b'L'), "the child did not take the lock");
    let key = String::from_utf8(redis.dump()[0].0.clone()).unwrap();
    assert!(
        key.ends_with(":lock"),
        "the dead holder's lock is there: {key}"
    );

    let waiter = Case::new(&server, &extra);
    let started = Instant::now();
    waiter.token();
    let waited = started.elapsed();
    assert_eq!(waiter.fetches(), 1);
    // Its lease is 300 ms; the old lock lived for the whole fetch bound (15 s).
    assert!(waited < Duration::from_millis(400 + 400), "{waited:?}");
    assert!(
        waiter.reports.errors().is_empty(),
        "{:?}",
        waiter.reports.errors()
    );
}

#[test]
fn a_live_redis_lock_holder_keeps_its_lock_past_one_lease() {
    let server = StandIn::start();
    let redis = Redis::start(None);
    let url = redis.url();
    let extra = [
        ("token_cache", "redis"),
        ("redis_url", url.as_str()),
        ("timeout_ms", "5000"),
        ("token_cache_timeout_ms", "200"),
    ];
    let holder = Case::new(&server, &extra);
    let waiter = Case::new(&server, &extra);
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let fetching = scope.spawn(|| {
            holder.cache.get_or_fetch(|| {
                locked_tx.send(()).unwrap();
                // Eight leases of 150 ms: the lock lives on only if it is renewed.
                slow_token("eyJslow-holder", Duration::from_millis(1200))
            })
        });
        locked_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        // Another "process" arrives while the holder fetches: it waits and takes its token.
        assert_eq!(waiter.token(), "eyJslow-holder");
        assert_eq!(waiter.fetches(), 0);
        assert_eq!(fetching.join().unwrap().unwrap().value(), "eyJslow-holder");
    });
}

#[test]
fn the_next_writer_removes_a_crashed_writers_temporary_files_and_only_those() {
    let server = StandIn::start();
    let dir = temp_dir("stale-temps");
    let extra = [
        ("token_cache", "file"),
        ("token_cache_dir", dir.to_str().unwrap()),
    ];
    let c = Case::new(&server, &extra);
    c.token();
    let key = entry_file(&dir)
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let two_minutes_ago = std::time::SystemTime::now() - Duration::from_secs(120);
    let make = |name: &str, age: Option<std::time::SystemTime>| {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        if let Some(t) = age {
            file.set_modified(t).unwrap();
        }
        path
    };
    // A crashed writer's, of this key and of another one (same pattern).
    let crashed = make(
        &format!(".{key}.4242.0123456789ab.tmp"),
        Some(two_minutes_ago),
    );
    let other_key = format!(".{}.77.ba9876543210.tmp", "e".repeat(64));
    let crashed_other = make(&other_key, Some(two_minutes_ago));
    // Kept: a writer's that may still be running, files not named as ours, and a directory.
    let fresh = make(&format!(".{key}.4243.0123456789ab.tmp"), None);
    let not_ours = [
        make(&format!(".{key}.tmp"), Some(two_minutes_ago)),
        make(
            &format!("{key}.4244.0123456789ab.tmp"),
            Some(two_minutes_ago),
        ),
        make(
            &format!(".{key}.x44.0123456789ab.tmp"),
            Some(two_minutes_ago),
        ),
        make("notes.tmp", Some(two_minutes_ago)),
    ];
    let a_dir = dir.join(format!(".{key}.4245.0123456789ab.tmp"));
    std::fs::create_dir(&a_dir).unwrap();
    std::fs::File::open(&a_dir)
        .unwrap()
        .set_modified(two_minutes_ago)
        .unwrap();

    // Reading removes nothing; the next write does.
    let reader = Case::new(&server, &extra);
    reader.token();
    assert_eq!(reader.fetches(), 0);
    assert!(crashed.exists());
    std::fs::remove_file(entry_file(&dir)).unwrap();
    let writer = Case::new(&server, &extra);
    writer.token();
    assert_eq!(writer.fetches(), 1);
    assert!(!crashed.exists() && !crashed_other.exists());
    assert!(fresh.exists() && a_dir.is_dir());
    for path in &not_ours {
        assert!(path.exists(), "{}", path.display());
    }
    assert!(
        writer.reports.errors().is_empty(),
        "{:?}",
        writer.reports.errors()
    );
}

// ---------------------------------------------------------------------------------------------
// Workload identity: no secret to seal with (issue 23).

fn jwt(sub: &str, n: u32) -> String {
    use base64::Engine as _;
    let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2ln",
        e(r#"{"alg":"RS256"}"#),
        e(&format!(
            r#"{{"iss":"https://k8s.example","sub":"{sub}","n":{n}}}"#
        ))
    )
}

#[test]
fn a_fleet_without_a_secret_shares_through_redis_with_its_key_file() {
    let idp = idp_support::Idp::start();
    let redis = Redis::start(None);
    let dir = temp_dir("workload");
    let key = dir.join("seal.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let other_key = dir.join("other.key");
    std::fs::write(&other_key, "fedcba9876543210fedcba9876543210").unwrap();
    std::fs::set_permissions(&other_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let assertion = dir.join("assertion");
    std::fs::write(&assertion, jwt("pod-a", 1)).unwrap();
    let url = redis.url();
    let session = |key: &Path, file: &Path| {
        cloudauth::Session::new(&idp.config(&[
            ("auth_method", "client_assertion"),
            ("client_assertion_file", file.to_str().unwrap()),
            ("token_cache", "redis"),
            ("redis_url", &url),
            ("token_cache_key_file", key.to_str().unwrap()),
        ]))
        .unwrap()
    };
    let token = |s: &cloudauth::Session| s.with_token(str::to_owned).unwrap();
    let first = token(&session(&key, &assertion));
    // Another process, the assertion rotated meanwhile: the same entry, no token request.
    std::fs::write(&assertion, jwt("pod-a", 2)).unwrap();
    assert_eq!(token(&session(&key, &assertion)), first);
    assert_eq!(idp.token_forms().len(), 1);
    // Another key cannot open the entry: it fetches (and the token never sat in the clear).
    assert_ne!(token(&session(&other_key, &assertion)), first);
    assert_eq!(idp.token_forms().len(), 2);
    for value in redis_values(&redis) {
        assert!(!contains(&value, &first), "a token in the clear");
        assert!(
            !contains(&value, &jwt("pod-a", 2)),
            "an assertion in the clear"
        );
    }

    // Token exchange: two workloads of one client never share; the same one does.
    let exchange = |subject: &Path| {
        cloudauth::Session::new(&idp.config(&[
            ("grant_type", "token_exchange"),
            ("subject_token_file", subject.to_str().unwrap()),
            ("token_cache", "redis"),
            ("redis_url", &url),
            ("token_cache_key_file", key.to_str().unwrap()),
        ]))
        .unwrap()
    };
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::write(&a, jwt("system:serviceaccount:ns:a", 1)).unwrap();
    std::fs::write(&b, jwt("system:serviceaccount:ns:b", 1)).unwrap();
    let ta = token(&exchange(&a));
    let tb = token(&exchange(&b));
    assert_ne!(ta, tb);
    std::fs::write(&a, jwt("system:serviceaccount:ns:a", 2)).unwrap(); // rotated, same subject
    assert_eq!(token(&exchange(&a)), ta);
    assert_eq!(idp.token_forms().len(), 4);
}

/// Every value Redis holds.
fn redis_values(redis: &Redis) -> Vec<Vec<u8>> {
    let mut c = redis.conn().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    keys.iter()
        .filter_map(|k| {
            redis::cmd("GET")
                .arg(k)
                .query::<Option<Vec<u8>>>(&mut c)
                .ok()
                .flatten()
        })
        .collect()
}
