//! A text as the finders read it: the body's own bytes when it is all ASCII (no copy, one byte
//! per character), else its code points (`text::decode`). Every finder is generic over both.
//!
//! Finders jump from anchor to anchor (`@`, a digit, the `k` of `linkedin`) with `find` and
//! `skip`: on a large body that is most of the work, so on bytes they are vectorised.

/// One character of a text: an ASCII byte or a code point (lone surrogates included).
pub trait Unit: Copy {
    /// The character's code point.
    fn code(self) -> u32;

    /// The first index from `from` whose character `ascii` (for an ASCII one) or `other` (for
    /// any other code point) accepts; `t.len()` if none.
    fn skip(
        t: &[Self],
        from: usize,
        ascii: impl Fn(u8) -> bool,
        other: impl Fn(u32) -> bool,
    ) -> usize;

    /// The first index from `from` that holds one of `bytes` (one to three ASCII characters)
    /// or a code point `other` accepts; `t.len()` if none.
    fn find(t: &[Self], from: usize, bytes: &[u8], other: impl Fn(u32) -> bool) -> usize;

    /// The first index from `from` that holds an ASCII digit, one of `extra`, or a code point
    /// `other` accepts; `t.len()` if none. `skip` for the phone finder's anchors.
    #[inline(always)]
    fn skip_to_digit(t: &[Self], from: usize, extra: &[u8; 3], other: impl Fn(u32) -> bool) -> usize {
        let [a, b, c] = *extra;
        Self::skip(t, from, |x| x.is_ascii_digit() | (x == a) | (x == b) | (x == c), other)
    }

    /// The text as its bytes when it is read as bytes (an ASCII body), else None.
    fn ascii(t: &[Self]) -> Option<&[u8]>;
}

/// Bytes tested at once: one SSE2 compare. Wider blocks lose on JSON, where a digit comes
/// every few dozen bytes and the block that holds one is then read byte by byte.
const BLOCK: usize = 16;

impl Unit for u8 {
    #[inline(always)]
    fn code(self) -> u32 {
        u32::from(self)
    }

    /// Only ASCII bodies are read as bytes, so `other` never applies. A block is tested
    /// without an early exit (`|`, not `||`) so that the compiler vectorises the test.
    #[inline(always)]
    fn skip(t: &[u8], from: usize, ascii: impl Fn(u8) -> bool, _: impl Fn(u32) -> bool) -> usize {
        let mut i = from;
        while let Some(block) = t.get(i..i + BLOCK) {
            if block.iter().fold(false, |hit, &b| hit | ascii(b)) {
                break;
            }
            i += BLOCK;
        }
        while i < t.len() && !ascii(t[i]) {
            i += 1;
        }
        i.min(t.len())
    }

    /// memchr's vectorised search (one to three bytes) for an anchor.
    #[inline(always)]
    fn find(t: &[u8], from: usize, bytes: &[u8], _: impl Fn(u32) -> bool) -> usize {
        let rest = t.get(from..).unwrap_or_default();
        let hit = match *bytes {
            [a] => memchr::memchr(a, rest),
            [a, b] => memchr::memchr2(a, b, rest),
            [a, b, c] => memchr::memchr3(a, b, c, rest),
            _ => unreachable!("one to three bytes"),
        };
        hit.map_or(t.len(), |i| from + i)
    }

    /// Sixteen bytes tested per SSE2 compare, the hit's place read off the compare's mask
    /// (the generic `skip` walks the block that holds a hit byte by byte: JSON has a digit
    /// every few dozen bytes).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn skip_to_digit(t: &[u8], from: usize, extra: &[u8; 3], _: impl Fn(u32) -> bool) -> usize {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8, _mm_sub_epi8,
        };
        let mut i = from;
        // SAFETY: SSE2 is part of x86_64; each load reads t[i..i + 16], inside `t`.
        unsafe {
            let (zero, nine) = (_mm_set1_epi8(b'0' as i8), _mm_set1_epi8(9));
            let [a, b, c] = extra.map(|x| _mm_set1_epi8(x as i8));
            while i + BLOCK <= t.len() {
                let block = _mm_loadu_si128(t.as_ptr().add(i).cast());
                let digit = _mm_sub_epi8(block, zero); // a digit: 0..=9 as an unsigned byte
                let hits = _mm_or_si128(
                    _mm_cmpeq_epi8(_mm_min_epu8(digit, nine), digit),
                    _mm_or_si128(
                        _mm_cmpeq_epi8(block, a),
                        _mm_or_si128(_mm_cmpeq_epi8(block, b), _mm_cmpeq_epi8(block, c)),
                    ),
                );
                let mask = _mm_movemask_epi8(hits);
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += BLOCK;
            }
        }
        while i < t.len() && !(t[i].is_ascii_digit() | extra.contains(&t[i])) {
            i += 1;
        }
        i.min(t.len())
    }

    #[inline(always)]
    fn ascii(t: &[u8]) -> Option<&[u8]> {
        Some(t)
    }
}

impl Unit for u32 {
    #[inline(always)]
    fn code(self) -> u32 {
        self
    }

    /// Blocks of eight as for bytes, where a block passes only when it is all ASCII and
    /// none of it `ascii` accepts (a vector test); any other block is read one by one.
    #[inline(always)]
    fn skip(
        t: &[u32],
        from: usize,
        ascii: impl Fn(u8) -> bool,
        other: impl Fn(u32) -> bool,
    ) -> usize {
        let mut i = from;
        while i < t.len() {
            let block = &t[i..t.len().min(i + 8)];
            let maybe = |hit: bool, &c: &u32| hit | (c >= 0x80) | ascii(c as u8);
            if block.len() < 8 || block.iter().fold(false, maybe) {
                let exact = |&c: &u32| if c < 0x80 { ascii(c as u8) } else { other(c) };
                if let Some(k) = block.iter().position(exact) {
                    return i + k;
                }
            }
            i += block.len();
        }
        t.len()
    }

    // `bytes.contains` would call memchr once per character tested (one to three bytes).
    #[allow(clippy::manual_contains)]
    #[inline(always)]
    fn find(t: &[u32], from: usize, bytes: &[u8], other: impl Fn(u32) -> bool) -> usize {
        Self::skip(t, from, |b| bytes.iter().any(|&x| x == b), other)
    }

    #[inline(always)]
    fn ascii(_: &[u32]) -> Option<&[u8]> {
        None
    }
}

/// The code point at `i`, or u32::MAX past the end (matches no class).
#[inline(always)]
pub fn at<U: Unit>(t: &[U], i: usize) -> u32 {
    t.get(i).map_or(u32::MAX, |c| c.code())
}
