//! Generates include/cloudauth.h from src/ffi with cbindgen, and gives the shared library its
//! soname so it installs like a C library (libcloudauth.so.0).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/error.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcloudauth.so.{major}");
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
    // CI (tests/check_header.sh) fails if the result differs from what is committed.
    header.write_to_file(Path::new(&crate_dir).join("include/cloudauth.h"));
}
