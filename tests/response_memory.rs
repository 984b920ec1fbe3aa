//! Memory a server can steer: a declared `Content-Length` must never size an allocation; only
//! bytes that really arrived may. A counting global allocator records the largest single
//! allocation while a response declaring ~1 GB (under a 1 GiB cap) delivers 10 bytes.

#[path = "support/common/mod.rs"]
mod common;

use cloudauth::Code;
use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Answers every request with `head` and 10 body bytes, then closes.
fn lying_server(head: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(b"0123456789");
        }
    });
    port
}

#[test]
fn a_declared_length_is_not_allocated() {
    let standin = StandIn::start();
    let port = lying_server("HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n");
    let s = standin.session(&[("max_response_bytes", "1073741824")]);
    token(&s).unwrap();
    LARGEST.store(0, Ordering::Relaxed);
    let err = get(&s, &format!("http://127.0.0.1:{port}/big")).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK, "{}", err.message);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < 16 << 20,
        "a 10-byte body made a {largest}-byte allocation"
    );
}

#[test]
fn the_cap_itself_is_capped() {
    let mut cfg = cloudauth::Config::default();
    let err = cfg.set("max_response_bytes", "1099511627776").unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
    assert!(err.message.contains("1073741824"), "{}", err.message);
}
