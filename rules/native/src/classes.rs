//! Character classes exactly as Python 3 reads them (`str.isalnum`, `re`'s `\d` and `\s`),
//! over code points held as `u32` so lone surrogates (undecodable bytes) keep their place.

use crate::tables;

fn in_ranges(c: u32, table: &[(u32, u32)]) -> bool {
    let i = table.partition_point(|&(_, hi)| hi < c);
    i < table.len() && table[i].0 <= c
}

#[inline]
pub fn is_alnum(c: u32) -> bool {
    if c < 0x80 {
        (c as u8).is_ascii_alphanumeric()
    } else {
        in_ranges(c, tables::ALNUM)
    }
}

/// `re`'s `\d` on a str pattern: any decimal digit (Unicode category Nd).
#[inline]
pub fn is_decimal(c: u32) -> bool {
    if c < 0x80 {
        (c as u8).is_ascii_digit()
    } else {
        in_ranges(c, tables::DECIMAL)
    }
}

/// `re`'s `\s` on a str pattern.
#[inline]
pub fn is_space(c: u32) -> bool {
    in_ranges(c, tables::SPACE)
}

#[inline]
pub fn is_ignorable(c: u32) -> bool {
    c >= 0xAD && in_ranges(c, tables::IGNORABLE)
}

/// Is `c` one of the ASCII characters of `set` (a short literal)? A plain loop, which the
/// compiler unrolls: `[u8]::contains` would call memchr once per character tested.
#[inline]
pub fn is_ascii_in(c: u32, set: &[u8]) -> bool {
    set.iter().any(|&s| u32::from(s) == c)
}

#[inline]
pub fn is(c: u32, ascii: u8) -> bool {
    c == ascii as u32
}

/// The membership table of an ASCII set: one load per test instead of a search of the set.
pub const fn ascii_set(chars: &[u8]) -> [bool; 128] {
    let mut table = [false; 128];
    let mut i = 0;
    while i < chars.len() {
        table[chars[i] as usize] = true;
        i += 1;
    }
    table
}

#[inline]
pub fn in_set(c: u32, set: &[bool; 128]) -> bool {
    c < 0x80 && set[c as usize]
}
