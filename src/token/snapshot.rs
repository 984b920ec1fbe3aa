//! A copy of the cached token for the C API's read path (`cloudauth_session_token`): a seqlock
//! over atomic words. A reader takes no lock, writes nothing shared and needs no thread-local
//! (arc-swap's load claims a thread-local debt slot: a `__tls_get_addr` call in a cdylib).
//!
//! The token cache writes it under its flight lock, so one writer at a time, right after each
//! change of its current token; the two agree once the writer is done. A writer makes `seq` odd,
//! writes, and makes it even again; a reader copies and then checks that `seq` did not move,
//! and otherwise leaves the read to the full path. This is the seqlock of H.-J. Boehm, "Can
//! seqlocks get along with programming language memory models?" (2012), with the data in
//! atomics: writers store words, readers load bytes (see `Snapshot::copy`), so a read that races
//! with a write is not a data race, only a copy that is thrown away.
//!
//! Tokens longer than [`CAPACITY`] are not published here: their reads take the full path.

use crate::token::Token;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// The longest token published (real JWTs are 1-3 KiB).
const CAPACITY: usize = 8192;
const WORDS: usize = CAPACITY / 8;

pub struct Snapshot {
    /// Odd while a write is in progress.
    seq: AtomicU64,
    len: AtomicUsize,
    /// The token is fresh while [`coarse_now_ns`] is below this; 0 when there is none.
    fresh_until: AtomicU64,
    words: [AtomicU64; WORDS],
    /// Whether this CPU has AVX, found once (a field next to `seq` is cheaper to read than
    /// std's feature cache).
    #[cfg(target_arch = "x86_64")]
    avx: bool,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            seq: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            fresh_until: AtomicU64::new(0),
            words: [const { AtomicU64::new(0) }; WORDS],
            #[cfg(target_arch = "x86_64")]
            avx: std::arch::is_x86_feature_detected!("avx"),
        }
    }
}

impl Snapshot {
    /// Publishes `token` (`None`: no token). The caller serializes writers.
    pub fn publish(&self, token: Option<&Token>) {
        // Already odd only if a fork() cut a parent's write short: this write finishes it.
        let seq = self.seq.load(Ordering::Relaxed) | 1;
        self.seq.store(seq, Ordering::Relaxed);
        // The odd `seq` is visible before any data below (pairs with the reader's fence).
        fence(Ordering::Release);
        match token.and_then(|t| Some((t.value().as_bytes(), fresh_until(t)?))) {
            Some((bytes, until)) if bytes.len() <= CAPACITY => {
                for (word, chunk) in self.words.iter().zip(bytes.chunks(8)) {
                    let mut w = [0u8; 8];
                    w[..chunk.len()].copy_from_slice(chunk);
                    word.store(u64::from_ne_bytes(w), Ordering::Relaxed);
                }
                self.len.store(bytes.len(), Ordering::Relaxed);
                self.fresh_until.store(until, Ordering::Relaxed);
            }
            _ => self.fresh_until.store(0, Ordering::Relaxed),
        }
        self.seq.store(seq.wrapping_add(1), Ordering::Release);
    }

    /// Copies the token and its NUL into `buf` if it is fresh and fits in `cap` bytes; its
    /// length, or `None` (no fresh token, too long, or a write got in the way).
    ///
    /// A `None` after a race may leave bytes of a token in `buf`.
    ///
    /// # Safety
    /// `buf` has `cap` writable bytes.
    #[inline]
    pub unsafe fn copy_fresh(&self, buf: *mut u8, cap: usize) -> Option<usize> {
        // The clock before the loads: fewer values live across its call.
        let now = coarse_now_ns();
        let seq = self.seq.load(Ordering::Acquire);
        let len = self.len.load(Ordering::Relaxed);
        let until = self.fresh_until.load(Ordering::Relaxed);
        // `len` may belong to a write in progress: bounded here, so the copy stays inside both
        // buffers whatever it is; `seq` tells afterwards whether it was the real one.
        if seq & 1 != 0 || len >= cap || len > CAPACITY || now >= until {
            return None;
        }
        self.copy(buf, len);
        // Any byte a concurrent write stored makes the load below see its odd `seq` or later.
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != seq {
            return None;
        }
        *buf.add(len) = 0;
        Some(len)
    }
}

/// The deadline of [`Snapshot::copy_fresh`] for `token`: its refresh point on the coarse
/// clock, made earlier by twice that clock's resolution so that a fresh read there is also
/// fresh by `Instant` (the coarse clock lags the precise one by at most a tick). `None` if the
/// token is not fresh or the coarse clock is unusable.
fn fresh_until(token: &Token) -> Option<u64> {
    // The clock first, then `Instant`: the deadline comes out early by the gap, never late.
    let now_ns = clock_ns(libc::CLOCK_MONOTONIC)?;
    let left = token.refresh_at.checked_duration_since(Instant::now())?;
    let mut res = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `res` is writable.
    if unsafe { libc::clock_getres(COARSE, &mut res) } != 0 || res.tv_sec != 0 {
        return None;
    }
    let margin = 2 * res.tv_nsec as u64;
    let until = now_ns.checked_add(u64::try_from(left.as_nanos()).ok()?)?;
    until.checked_sub(margin).filter(|&u| u > 0)
}

/// The clock `Instant` uses (CLOCK_MONOTONIC on Linux), read at the last tick: from the vDSO
/// without reading the TSC, so a few ns instead of ~20 in a VM.
#[cfg(target_os = "linux")]
const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
#[cfg(not(target_os = "linux"))]
const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC;

#[inline]
fn coarse_now_ns() -> u64 {
    // On failure (never, for these clocks) no deadline is ahead: not fresh.
    clock_ns(COARSE).unwrap_or(u64::MAX)
}

#[inline]
fn clock_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is writable.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some((ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64)
}

impl Snapshot {
    /// Copies `len` bytes of the words, which a writer may be storing to at the same time, to
    /// `dst`.
    ///
    /// In Rust's memory model a racy non-atomic read is undefined behaviour, and loading the
    /// words one relaxed `AtomicU64` at a time costs ~2.5 instructions per 8 bytes, more than
    /// the whole rest of the read. So on x86_64 the copy is inline assembly: to the compiler an
    /// opaque block that reads `src` and writes `dst`; its effect is that of relaxed atomic
    /// byte loads ("byte-wise atomic memcpy", C++ P1478), which x86's plain vector loads
    /// provide (every byte read is a byte some store wrote). A torn result is discarded by the
    /// caller's `seq` check.
    ///
    /// # Safety
    /// `len <= CAPACITY` and `dst` has `len` writable bytes.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    unsafe fn copy(&self, dst: *mut u8, len: usize) {
        let src = self.words.as_ptr().cast::<u8>();
        if len >= 32 && self.avx {
            racy_copy_avx(src, dst, len);
        } else {
            racy_copy_sse2(src, dst, len);
        }
    }

    /// Elsewhere: relaxed atomic word loads (slower, plainly sound).
    ///
    /// # Safety
    /// As on x86_64.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    unsafe fn copy(&self, dst: *mut u8, len: usize) {
        for (i, word) in self.words[..len.div_ceil(8)].iter().enumerate() {
            let w = word.load(Ordering::Relaxed).to_ne_bytes();
            let n = (len - i * 8).min(8);
            std::ptr::copy_nonoverlapping(w.as_ptr(), dst.add(i * 8), n);
        }
    }
}

/// 128 bytes a round in 32-byte moves, then the last 128 (or 32) bytes again, overlapping.
///
/// # Safety
/// `src` has `len` readable bytes, `dst` `len` writable bytes, they do not overlap,
/// `len >= 32` and AVX is present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn racy_copy_avx(src: *const u8, dst: *mut u8, len: usize) {
    std::arch::asm!(
        "xor {off:e}, {off:e}",
        "cmp {len}, 128",
        "jb 3f",
        "lea {last}, [{len} - 128]",
        "2:",
        "vmovdqu ymm0, [{src} + {off}]",
        "vmovdqu ymm1, [{src} + {off} + 32]",
        "vmovdqu ymm2, [{src} + {off} + 64]",
        "vmovdqu ymm3, [{src} + {off} + 96]",
        "vmovdqu [{dst} + {off}], ymm0",
        "vmovdqu [{dst} + {off} + 32], ymm1",
        "vmovdqu [{dst} + {off} + 64], ymm2",
        "vmovdqu [{dst} + {off} + 96], ymm3",
        "add {off}, 128",
        "cmp {off}, {last}",
        "jb 2b",
        "vmovdqu ymm0, [{src} + {last}]",
        "vmovdqu ymm1, [{src} + {last} + 32]",
        "vmovdqu ymm2, [{src} + {last} + 64]",
        "vmovdqu ymm3, [{src} + {last} + 96]",
        "vmovdqu [{dst} + {last}], ymm0",
        "vmovdqu [{dst} + {last} + 32], ymm1",
        "vmovdqu [{dst} + {last} + 64], ymm2",
        "vmovdqu [{dst} + {last} + 96], ymm3",
        "jmp 5f",
        "3:",
        "lea {last}, [{len} - 32]",
        "4:",
        "cmp {off}, {last}",
        "jae 6f",
        "vmovdqu ymm0, [{src} + {off}]",
        "vmovdqu [{dst} + {off}], ymm0",
        "add {off}, 32",
        "jmp 4b",
        "6:",
        "vmovdqu ymm0, [{src} + {last}]",
        "vmovdqu [{dst} + {last}], ymm0",
        "5:",
        "vzeroupper",
        src = in(reg) src,
        dst = in(reg) dst,
        len = in(reg) len,
        off = out(reg) _,
        last = out(reg) _,
        out("ymm0") _,
        out("ymm1") _,
        out("ymm2") _,
        out("ymm3") _,
        options(nostack),
    );
}

/// 64 bytes a round in 16-byte moves, then the last 64 (or 16) bytes again; bytes one by one
/// below 16.
///
/// # Safety
/// `src` has `len` readable bytes, `dst` `len` writable bytes, and they do not overlap.
#[cfg(target_arch = "x86_64")]
unsafe fn racy_copy_sse2(src: *const u8, dst: *mut u8, len: usize) {
    std::arch::asm!(
        "xor {off:e}, {off:e}",
        "cmp {len}, 16",
        "jb 7f",
        "cmp {len}, 64",
        "jb 3f",
        "lea {last}, [{len} - 64]",
        "2:",
        "movdqu xmm0, [{src} + {off}]",
        "movdqu xmm1, [{src} + {off} + 16]",
        "movdqu xmm2, [{src} + {off} + 32]",
        "movdqu xmm3, [{src} + {off} + 48]",
        "movdqu [{dst} + {off}], xmm0",
        "movdqu [{dst} + {off} + 16], xmm1",
        "movdqu [{dst} + {off} + 32], xmm2",
        "movdqu [{dst} + {off} + 48], xmm3",
        "add {off}, 64",
        "cmp {off}, {last}",
        "jb 2b",
        "movdqu xmm0, [{src} + {last}]",
        "movdqu xmm1, [{src} + {last} + 16]",
        "movdqu xmm2, [{src} + {last} + 32]",
        "movdqu xmm3, [{src} + {last} + 48]",
        "movdqu [{dst} + {last}], xmm0",
        "movdqu [{dst} + {last} + 16], xmm1",
        "movdqu [{dst} + {last} + 32], xmm2",
        "movdqu [{dst} + {last} + 48], xmm3",
        "jmp 5f",
        "3:",
        "lea {last}, [{len} - 16]",
        "4:",
        "cmp {off}, {last}",
        "jae 6f",
        "movdqu xmm0, [{src} + {off}]",
        "movdqu [{dst} + {off}], xmm0",
        "add {off}, 16",
        "jmp 4b",
        "6:",
        "movdqu xmm0, [{src} + {last}]",
        "movdqu [{dst} + {last}], xmm0",
        "jmp 5f",
        "7:",
        "cmp {off}, {len}",
        "jae 5f",
        "movzx {last:e}, byte ptr [{src} + {off}]",
        "mov byte ptr [{dst} + {off}], {last:l}",
        "inc {off}",
        "jmp 7b",
        "5:",
        src = in(reg) src,
        dst = in(reg) dst,
        len = in(reg) len,
        off = out(reg) _,
        last = out(reg) _,
        out("xmm0") _,
        out("xmm1") _,
        out("xmm2") _,
        out("xmm3") _,
        options(nostack),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn token(value: String, refresh_in: Duration) -> Token {
        Token::from_remaining(value, refresh_in, refresh_in * 2).unwrap()
    }

    /// Every length the copy handles differently (bytes, 16/32-byte chunks, 64/128-byte
    /// rounds, the overlapping tails), with the buffer's bytes past the NUL left alone.
    #[test]
    fn copies_every_length_exactly() {
        let snap = Snapshot::default();
        for len in (1..=300).chain([924, 1000, 4095, 4096, 4097, CAPACITY]) {
            let value: String = (0..len)
                .map(|i| (b'!' + (i * 7 % 90) as u8) as char)
                .collect();
            snap.publish(Some(&token(value.clone(), Duration::from_secs(60))));
            let mut buf = vec![0xAAu8; len + 8];
            let got = unsafe { snap.copy_fresh(buf.as_mut_ptr(), buf.len()) };
            assert_eq!(got, Some(len), "length {len}");
            assert_eq!(&buf[..len], value.as_bytes(), "length {len}");
            assert_eq!(buf[len], 0);
            assert!(
                buf[len + 1..].iter().all(|&b| b == 0xAA),
                "length {len}: wrote past the NUL"
            );
            // No room for the NUL: not copied.
            let mut small = vec![0xAAu8; len];
            assert_eq!(unsafe { snap.copy_fresh(small.as_mut_ptr(), len) }, None);
            assert!(small.iter().all(|&b| b == 0xAA));
        }
    }

    /// The SSE2 copy (used without AVX, and below 32 bytes) at every length it handles
    /// differently, writing nothing past `len`.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sse2_copy_every_length() {
        let src: Vec<u8> = (0..1200u32).map(|i| (i * 13 % 251) as u8).collect();
        for len in 0..=src.len() {
            let mut dst = vec![0xAAu8; len + 32];
            unsafe { racy_copy_sse2(src.as_ptr(), dst.as_mut_ptr(), len) };
            assert_eq!(&dst[..len], &src[..len], "length {len}");
            assert!(
                dst[len..].iter().all(|&b| b == 0xAA),
                "length {len}: wrote past the end"
            );
        }
    }

    #[test]
    fn no_token_too_long_or_not_fresh_is_not_copied() {
        let snap = Snapshot::default();
        let mut buf = vec![0u8; CAPACITY + 16];
        assert_eq!(
            unsafe { snap.copy_fresh(buf.as_mut_ptr(), buf.len()) },
            None
        );
        let long = "x".repeat(CAPACITY + 1);
        snap.publish(Some(&token(long, Duration::from_secs(60))));
        assert_eq!(
            unsafe { snap.copy_fresh(buf.as_mut_ptr(), buf.len()) },
            None
        );
        snap.publish(Some(&token("abc".into(), Duration::ZERO)));
        assert_eq!(
            unsafe { snap.copy_fresh(buf.as_mut_ptr(), buf.len()) },
            None
        );
        snap.publish(Some(&token("abc".into(), Duration::from_secs(60))));
        assert_eq!(
            unsafe { snap.copy_fresh(buf.as_mut_ptr(), buf.len()) },
            Some(3)
        );
        snap.publish(None);
        assert_eq!(
            unsafe { snap.copy_fresh(buf.as_mut_ptr(), buf.len()) },
            None
        );
    }

    /// Stops being fresh before the token's refresh point, never after it.
    #[test]
    fn fresh_ends_before_the_refresh_point() {
        let snap = Snapshot::default();
        let t = token("abc".into(), Duration::from_millis(300));
        snap.publish(Some(&t));
        let mut buf = [0u8; 8];
        assert_eq!(unsafe { snap.copy_fresh(buf.as_mut_ptr(), 8) }, Some(3));
        loop {
            let fresh = unsafe { snap.copy_fresh(buf.as_mut_ptr(), 8) }.is_some();
            let now = Instant::now();
            if !fresh {
                break;
            }
            assert!(now < t.refresh_at, "fresh after the refresh point");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Readers racing a writer that alternates two tokens of different lengths only ever see
    /// one of them whole.
    #[test]
    fn racing_readers_see_whole_tokens() {
        let snap = Snapshot::default();
        let a: String = "a".repeat(700);
        let b: String = "b".repeat(1300);
        let ta = token(a.clone(), Duration::from_secs(60));
        let tb = token(b.clone(), Duration::from_secs(60));
        snap.publish(Some(&ta));
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    let mut buf = vec![0u8; 2048];
                    let mut seen = 0u64;
                    while !stop.load(Ordering::Relaxed) || seen == 0 {
                        if let Some(n) = unsafe { snap.copy_fresh(buf.as_mut_ptr(), buf.len()) } {
                            let got = &buf[..n];
                            assert!(
                                got == a.as_bytes() || got == b.as_bytes(),
                                "torn read of {n}"
                            );
                            assert_eq!(buf[n], 0);
                            seen += 1;
                        }
                    }
                });
            }
            for i in 0..20_000 {
                snap.publish(Some(if i % 2 == 0 { &tb } else { &ta }));
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
}
