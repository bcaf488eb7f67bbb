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

fn local_starts<U: Unit>(t: &[U], at: usize, starts: &mut Vec<usize>) {
    starts.clear();
    let mut first = at;
    let limit = at.saturating_sub(MAX_LOCAL);
    while first > limit && is_local(t[first - 1].code()) {
        first -= 1;
    }
    if first == at {
        return;
    }
    starts.push(first);
    let mut k = at - 1;
    while k > first {
        let before = t[k - 1].code();
        if in_set(before, &WEAK) || (before >= 0x80 && t[k].code() < 0x80) {
            starts.push(k);
            if starts.len() > MAX_SPLITS {
                break;
            }
        }
        k -= 1;
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
