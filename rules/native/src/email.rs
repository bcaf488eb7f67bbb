//! Email candidates around every `@` (textfind._emails): each reading of the local part
//! times each reading of the domain.

use crate::classes::{is, is_alnum, is_ascii_in};

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;
const MAX_SPLITS: usize = 16;
const LOCAL_ASCII: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-";
const WEAK: &[u8] = b"!#$%&'*/=?^`{|}~";
const DOMAIN_ASCII: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";

#[inline]
fn is_local(c: u32) -> bool {
    if c < 0x80 {
        LOCAL_ASCII.contains(&(c as u8))
    } else {
        is_alnum(c)
    }
}

#[inline]
fn is_domain(c: u32) -> bool {
    if c < 0x80 {
        DOMAIN_ASCII.contains(&(c as u8))
    } else {
        is_alnum(c)
    }
}

pub fn emails(t: &[u32], out: &mut Vec<(usize, usize)>) {
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for at in 0..t.len() {
        if !is(t[at], b'@') {
            continue;
        }
        local_starts(t, at, &mut starts);
        if starts.is_empty() {
            continue;
        }
        domain_ends(t, at, &mut ends);
        for &start in &starts {
            for &end in &ends {
                out.push((start, end));
            }
        }
    }
}

fn local_starts(t: &[u32], at: usize, starts: &mut Vec<usize>) {
    starts.clear();
    let mut first = at;
    let limit = at.saturating_sub(MAX_LOCAL);
    while first > limit && is_local(t[first - 1]) {
        first -= 1;
    }
    if first == at {
        return;
    }
    starts.push(first);
    let mut k = at - 1;
    while k > first {
        let before = t[k - 1];
        if is_ascii_in(before, WEAK) || (before >= 0x80 && t[k] < 0x80) {
            starts.push(k);
            if starts.len() > MAX_SPLITS {
                break;
            }
        }
        k -= 1;
    }
}

fn domain_ends(t: &[u32], at: usize, ends: &mut Vec<usize>) {
    ends.clear();
    let mut end = at + 1;
    let limit = t.len().min(at + 1 + MAX_DOMAIN);
    while end < limit && is_domain(t[end]) {
        let c = t[end];
        let split = is(c, b'.') || (c >= 0x80 && t[end - 1] < 0x80);
        if split && ends.len() < MAX_SPLITS {
            ends.push(end);
        }
        end += 1;
    }
    while end > at + 1 && (is(t[end - 1], b'.') || is(t[end - 1], b'-')) {
        end -= 1;
    }
    if !ends.contains(&end) {
        ends.push(end); // the reference lists it twice; its candidates are listed once
    }
}
