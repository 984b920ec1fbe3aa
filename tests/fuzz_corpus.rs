//! Replays every committed fuzz input (fuzz/seeds/<target>/ and the inputs that once broke a
//! target, fuzz/regressions/<target>/) through the target's checks in `cloudauth::fuzzing`,
//! on stable Rust, so what the fuzzers found stays fixed. `make fuzz` / `make test-fuzz` run
//! the fuzzers themselves.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seen = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} broke the target",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "{target}: no seeds under fuzz/seeds/{target}");
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            replay(stringify!($name), cloudauth::fuzzing::$name);
        }
    )*};
}

targets!(
    token_response,
    discovery_metadata,
    pem_key,
    der_key_jwk,
    certificate,
    sealed_entry,
    redis_reply,
    config_value,
    www_authenticate,
    url_join,
);

/// Every target of fuzz/Cargo.toml has a test here and seeds (a target added there without
/// one fails).
#[test]
fn every_fuzz_target_is_replayed() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/Cargo.toml")).unwrap();
    let names: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|n| n.trim_end_matches('"'))
        .filter(|n| *n != "cloudauth-fuzz")
        .collect();
    let here = include_str!("fuzz_corpus.rs");
    for n in &names {
        assert!(
            here.contains(&format!("    {n},\n")),
            "fuzz target {n} is not replayed here"
        );
    }
    assert_eq!(names.len(), 10, "{names:?}");
}

/// Found by fuzz/der_key_jwk and fuzz/pem_key: an RSA key whose parts parse but do not fit
/// together made every signature panic (ring checks each one before handing it out), at the
/// first token request or DPoP proof. It is now refused when the key is loaded, by name.
#[test]
fn an_rsa_key_that_cannot_sign_is_refused_when_loaded() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions/pem_key");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().contains("rsa-parts-do-not-fit") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let e =
            cloudauth::jose::SigningKey::from_pem("client_key_file", "/k.pem", &data[1..], None)
                .unwrap_err();
        assert_eq!(e.code, cloudauth::Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
        assert!(
            e.message.contains("cannot sign") || e.message.contains("not a usable"),
            "{}",
            e.message
        );
        checked += 1;
    }
    assert!(checked > 0);
}
