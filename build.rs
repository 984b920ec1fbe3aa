//! Generates include/cloudauth.h from src/ffi with cbindgen, and gives the shared library its
//! soname so it installs like a C library (libcloudauth.so.0).

use std::path::Path;

/// A program linked with `-Ltarget/release -lcloudauth` asks the loader for the soname,
/// `libcloudauth.so.0`; cargo only writes `libcloudauth.so`. A symlink beside it (made before
/// the library exists, it resolves once the link step writes it) keeps `cc app.c ...
/// -Ltarget/release -lcloudauth` runnable with `LD_LIBRARY_PATH=target/release`.
fn link_soname(major: &str) {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // OUT_DIR is <target>/<profile>/build/cloudauth-<hash>/out
    if let Some(profile_dir) = out_dir.ancestors().nth(3) {
        let link = profile_dir.join(format!("libcloudauth.so.{major}"));
        if std::fs::symlink_metadata(&link).is_err() {
            let _ = std::os::unix::fs::symlink("libcloudauth.so", &link);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/error.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcloudauth.so.{major}");
        link_soname(&major);
    }

    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let config = cbindgen::Config::from_file(Path::new(&crate_dir).join("cbindgen.toml"))
        .expect("cbindgen.toml");
    let header = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    // Written only when it changed, so builds don't churn the checked-in file's mtime.
    // CI (tests/run/check_header.sh) fails if the result differs from what is committed.
    header.write_to_file(Path::new(&crate_dir).join("include/cloudauth.h"));
}
