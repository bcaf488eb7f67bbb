//! Phone candidates (rules/detect/phonescan.py): every window of 7 to 18 digits of every digit run,
//! and every number written with an exponent. `\d` is any Unicode decimal digit, as in `re`.

use crate::classes::{is, is_ascii_in, is_decimal, is_space};
use crate::units::Unit;

const MIN_DIGITS: usize = 7;
const MAX_DIGITS: usize = 18;

fn dec<U: Unit>(t: &[U], i: usize) -> bool {
    i < t.len() && is_decimal(t[i].code())
}

fn digits_end<U: Unit>(t: &[U], mut i: usize) -> usize {
    while dec(t, i) {
        i += 1;
    }
    i
}

/// rules/detect/phonescan.py `_SEP`: ASCII separators, no-break space, Unicode spaces and dashes,
/// the one dot leader.
fn is_sep(c: u32) -> bool {
    matches!(c, 0xA0 | 0x1680 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 | 0x2010..=0x2015
        | 0x2212 | 0x2024)
        || is_ascii_in(c, b" .-/()")
}

/// The end of `_RUN` matched at `p`, if it matches there.
fn run_at<U: Unit>(t: &[U], p: usize) -> Option<usize> {
    let c = t[p].code();
    let first = if is(c, b'+') && dec(t, p + 1) {
        p + 1
    } else if is(c, b'(') {
        if p + 1 < t.len() && is_space(t[p + 1].code()) && dec(t, p + 2) {
            p + 2
        } else if dec(t, p + 1) {
            p + 1
        } else {
            return None;
        }
    } else if is_decimal(c) {
        p
    } else {
        return None;
    };
    let mut end = digits_end(t, first);
    loop {
        let mut r = end;
        while r < t.len() && r - end < 3 && is_sep(t[r].code()) {
            r += 1;
        }
        if r == end || !dec(t, r) {
            return Some(end);
        }
        end = digits_end(t, r);
    }
}

/// The next place from `from` where a run may start: `+`, `(` or a digit.
fn next_run<U: Unit>(t: &[U], from: usize) -> usize {
    U::skip_to_digit(t, from, b'+', b'(', is_decimal)
}

pub fn phone_windows<U: Unit>(t: &[U], out: &mut Vec<(usize, usize)>) {
    let mut groups = Vec::new();
    let mut p = next_run(t, 0);
    while p < t.len() {
        match run_at(t, p) {
            Some(end) => {
                run_windows(t, p, end, &mut groups, out);
                p = end;
            }
            None => p += 1,
        }
        p = next_run(t, p);
    }
}

fn run_windows<U: Unit>(
    t: &[U],
    start: usize,
    end: usize,
    groups: &mut Vec<(usize, usize)>,
    out: &mut Vec<(usize, usize)>,
) {
    groups.clear();
    let mut i = start;
    let mut total = 0;
    while i < end {
        if is_decimal(t[i].code()) {
            let stop = digits_end(t, i).min(end);
            groups.push((i, stop));
            total += stop - i;
            i = stop;
        } else {
            i += 1;
        }
    }
    if total < MIN_DIGITS {
        return;
    }
    for (index, &(first, _)) in groups.iter().enumerate() {
        let window_start = if index == 0 {
            start
        } else {
            with_prefix(t, first, groups[index - 1].1)
        };
        let mut digits = 0;
        for &(group_start, group_end) in &groups[index..] {
            digits += group_end - group_start;
            if digits > MAX_DIGITS {
                break;
            }
            if digits >= MIN_DIGITS {
                out.push((window_start, group_end));
            }
        }
    }
}

fn with_prefix<U: Unit>(t: &[U], first: usize, previous_end: usize) -> usize {
    if first > previous_end && is(t[first - 1].code(), b'(') {
        first - 1
    } else {
        first
    }
}

/// The end of `_EXPONENT` matched at the digit run starting at `q`, if it matches.
fn exponent_from<U: Unit>(t: &[U], q: usize) -> Option<usize> {
    let run_end = digits_end(t, q);
    let mut e = run_end;
    if e < t.len() && is(t[e].code(), b'.') && dec(t, e + 1) {
        e = digits_end(t, e + 1);
        if !(e < t.len() && is_ascii_in(t[e].code(), b"eE")) {
            return None;
        }
    } else if !(e < t.len() && is_ascii_in(t[e].code(), b"eE")) {
        return None;
    }
    let mut k = e + 1;
    if k < t.len() && is_ascii_in(t[k].code(), b"+-") && dec(t, k + 1) {
        k += 1;
    }
    if !dec(t, k) {
        return None;
    }
    let mut end = k;
    while end - k < 3 && dec(t, end) {
        end += 1;
    }
    Some(end)
}

/// The next place from `from` where a number may start: `-` or a digit.
fn next_number<U: Unit>(t: &[U], from: usize) -> usize {
    U::skip_to_digit(t, from, b'-', b'-', is_decimal)
}

pub fn number_tokens<U: Unit>(t: &[U], out: &mut Vec<(usize, usize)>) {
    let mut p = next_number(t, 0);
    while p < t.len() {
        let digits = if is(t[p].code(), b'-') && dec(t, p + 1) {
            p + 1
        } else if is_decimal(t[p].code()) {
            p
        } else {
            p = next_number(t, p + 1);
            continue;
        };
        match exponent_from(t, digits) {
            Some(end) => {
                out.push((p, end));
                p = end;
            }
            None => p = digits_end(t, digits),
        }
        p = next_number(t, p);
    }
}
