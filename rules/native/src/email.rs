//! Email candidates around every `@` (textfind._emails): each reading of the local part
//! times each reading of the domain.

use crate::classes::{ascii_set, in_set, is, is_alnum};
use crate::units::Unit;

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;
const MAX_SPLITS: usize = 16;
const LOCAL_ASCII: [bool; 128] = ascii_set(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-",
);
const WEAK: [bool; 128] = ascii_set(b"!#$%&'*/=?^`{|}~");
const DOMAIN_ASCII: [bool; 128] =
    ascii_set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");

#[inline]
fn is_local(c: u32) -> bool {
    if c < 0x80 {
        LOCAL_ASCII[c as usize]
    } else {
        is_alnum(c)
    }
}

#[inline]
fn is_domain(c: u32) -> bool {
    if c < 0x80 {
        DOMAIN_ASCII[c as usize]
    } else {
        is_alnum(c)
    }
}

/// The next `@` from `from` (`t.len()`: none).
fn next_at<U: Unit>(t: &[U], from: usize) -> usize {
    U::find(t, from, b"@", |_| false)
}

pub fn emails<U: Unit>(t: &[U], out: &mut Vec<(usize, usize)>) {
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut at = next_at(t, 0);
    while at < t.len() {
        local_starts(t, at, &mut starts);
        if !starts.is_empty() {
            domain_ends(t, at, &mut ends);
            for &start in &starts {
                out.extend(ends.iter().map(|&end| (start, end)));
            }
        }
        at = next_at(t, at + 1);
    }
}

/// Where the local part before `at` may start: its first character, then each place after
/// a weak mark or a script change, nearest the `@` first (one walk back).
fn local_starts<U: Unit>(t: &[U], at: usize, starts: &mut Vec<usize>) {
    starts.clear();
    starts.push(at); // the first character's place, known once the walk ends
    let mut first = at;
    let limit = at.saturating_sub(MAX_LOCAL);
    while first > limit && is_local(t[first - 1].code()) {
        let before = t[first - 1].code();
        let split = in_set(before, &WEAK) || (before >= 0x80 && t[first].code() < 0x80);
        if first < at && split && starts.len() <= MAX_SPLITS {
            starts.push(first);
        }
        first -= 1;
    }
    if first == at {
        starts.clear();
    } else {
        starts[0] = first;
    }
}

fn domain_ends<U: Unit>(t: &[U], at: usize, ends: &mut Vec<usize>) {
    ends.clear();
    let mut end = at + 1;
    let limit = t.len().min(at + 1 + MAX_DOMAIN);
    while end < limit && is_domain(t[end].code()) {
        let c = t[end].code();
        let split = is(c, b'.') || (c >= 0x80 && t[end - 1].code() < 0x80);
        if split && ends.len() < MAX_SPLITS {
            ends.push(end);
        }
        end += 1;
    }
    while end > at + 1 && (is(t[end - 1].code(), b'.') || is(t[end - 1].code(), b'-')) {
        end -= 1;
    }
    if !ends.contains(&end) {
        ends.push(end); // the reference lists it twice; its candidates are listed once
    }
}
