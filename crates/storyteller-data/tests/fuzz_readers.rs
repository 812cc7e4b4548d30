//! Fuzz and property harness over the readers of `storyteller-data`: the three
//! Flickr30k annotation layouts (through [`Flickr30k::open_with`]), the vocabulary
//! file ([`Vocab::load`]), the feature cache ([`FeatureCache::open`]) and image
//! decoding ([`decode_rgb_bytes`]).
//!
//! Valid seeds are built in code; a small deterministic PRNG mutates them (byte
//! flips, overwrites, insertions, deletions, truncation, duplicated slices,
//! splices of two seeds, and format-aware mutations: lines, separators, numbers,
//! empty fields, non-UTF-8 bytes, deep JSON nesting, long lines, JSON values,
//! safetensors headers, PNG chunks with fixed CRCs, JPEG segments). Every input
//! goes to its reader inside `catch_unwind`; an accepted input must also satisfy
//! the reader's invariants (checked with assertions, so a violation counts as a
//! panic). Reader options (dataset [`LoadOptions`], image [`DecodeLimits`]) are
//! derived from a hash of the input, so a saved input replays exactly. The test
//! fails on any panic, printing the reader, the iteration and the panic location,
//! and saves the offending inputs (the first 20 per reader) under
//! `$CARGO_TARGET_DIR/fuzz-failures/` (else `target/fuzz-failures/`).
//!
//! ```text
//! cargo test -p storyteller-data --test fuzz_readers -- --nocapture
//! STORYTELLER_FUZZ_ITERATIONS=100000   # total over all readers (default 6000)
//! STORYTELLER_FUZZ_SEED=7              # another deterministic run
//! STORYTELLER_FUZZ_VERBOSE=1           # the commonest error messages per reader
//! STORYTELLER_FUZZ_REPLAY=<saved file> cargo test -p storyteller-data --test fuzz_readers replay -- --nocapture
//! ```

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn_dataset::Dataset;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use serde_json::{Map, Value, json};
use storyteller_data::{
    CacheKey, DecodeLimits, FeatureCache, FeatureCacheWriter, Flickr30k, LoadOptions,
    PreprocessConfig, SPECIALS, Shard, ShardRecord, Split, SplitConfig, Vocab, decode_rgb_bytes,
    image_dimensions, preprocess, tokenize,
};
use tempfile::TempDir;

/// Inputs over all readers when `STORYTELLER_FUZZ_ITERATIONS` is not set.
const DEFAULT_ITERATIONS: usize = 6_000;
/// Base seed when `STORYTELLER_FUZZ_SEED` is not set.
const DEFAULT_SEED: u64 = 0x5107_7e11_e4f0_22ed;
/// Mutated inputs are cut to this size.
const MAX_INPUT: usize = 1 << 20;
/// Accepted inputs kept per reader and mutated further (a little feedback).
const POOL: usize = 32;
/// Panics per reader that are printed and saved (the rest are only counted).
const REPORTED_PANICS: usize = 20;
/// An input slower than this is reported and saved (as `slow-...`); it does not fail the test.
const SLOW: Duration = Duration::from_secs(2);

/// Image ids of the annotation seeds; each dataset's image folder has these files.
const IMAGES: [&str; 5] = [
    "1000092795.jpg",
    "10002456.jpg",
    "1000268201.jpg",
    "1000344755.jpg",
    "2199200615.jpg",
];

// ---------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and good enough to drive mutations.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `1 / n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// 64-bit FNV-1a, to derive reader options from an input (so a saved input
/// replays with the same options).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------
// Generic byte mutations
// ---------------------------------------------------------------------------

const INTERESTING: [u64; 16] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    u64::MAX,
];

/// A non-empty span `a..b` of at most `max` bytes inside `0..len` (`len > 0`).
fn span(rng: &mut Rng, len: usize, max: usize) -> (usize, usize) {
    let a = rng.below(len);
    let n = rng.range(1, (len - a).min(max));
    (a, a + n)
}

/// One format-blind mutation.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, partner: &[u8]) {
    let len = data.len();
    match rng.below(10) {
        // Bit flip.
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        // Random or special byte overwrite.
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = if rng.one_in(2) {
                rng.byte()
            } else {
                *rng.pick(&[0, 0xff, 0x7f, 0x80, b'\n', b'0', b'9', b'"', b'{'])
            };
        }
        // Insert random bytes.
        2 => {
            let at = rng.below(len + 1);
            let n = rng.range(1, 16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            data.splice(at..at, bytes);
        }
        // Delete a range.
        3 if len > 0 => {
            let (a, b) = span(rng, len, 64);
            data.drain(a..b);
        }
        // Truncate.
        4 => data.truncate(rng.below(len + 1)),
        // Duplicate a slice somewhere.
        5 if len > 0 => {
            let (a, b) = span(rng, len, 256);
            let chunk = data[a..b].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        // Splice with another seed: a prefix of this one, a suffix of that one.
        6 => {
            let cut = rng.below(len + 1);
            let from = rng.below(partner.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&partner[from..]);
        }
        // Interesting integer, 1/2/4/8 bytes, little or big endian.
        7 if len > 0 => {
            let width = *rng.pick(&[1usize, 2, 4, 8]);
            let v = *rng.pick(&INTERESTING);
            let bytes = if rng.one_in(2) {
                v.to_le_bytes()[..width].to_vec()
            } else {
                v.to_be_bytes()[8 - width..].to_vec()
            };
            let at = rng.below(len);
            for (k, b) in bytes.into_iter().enumerate() {
                if let Some(slot) = data.get_mut(at + k) {
                    *slot = b;
                }
            }
        }
        // Repeat a short chunk many times.
        8 if len > 0 => {
            let (a, b) = span(rng, len, 16);
            let chunk = data[a..b].repeat(rng.range(2, 500));
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        // Swap two bytes.
        9 if len > 1 => {
            let (i, j) = (rng.below(len), rng.below(len));
            data.swap(i, j);
        }
        // The chosen mutation needs a non-empty input: append instead.
        _ => data.push(rng.byte()),
    }
}

// ---------------------------------------------------------------------------
// Text mutations (structure-aware for line/field formats and JSON text)
// ---------------------------------------------------------------------------

const SEPARATORS: [&[u8]; 9] = [b"\t", b",", b"|", b"| ", b"#", b" ", b":", b"\",\"", b"\n"];

const NUMBERS: [&str; 18] = [
    "0",
    "-1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999999999999999",
    "1e309",
    "-1e309",
    "-0",
    "+5",
    "0x10",
    "1.5",
    "NaN",
    "\u{0663}",
    "00000000000000000000000000000000000000000001",
    "9223372036854775808",
    "-9223372036854775809",
];

const NON_UTF8: [&[u8]; 10] = [
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\x80",
    b"\xef\xbb\xbf",
    b"\xfe\xff",
    b"\x80\x80",
    b"\xe2\x82",
    b"\xf8\x88\x80\x80\x80",
];

const WEIRD: [&str; 36] = [
    "\0",
    "\u{2028}",
    "\u{202e}",
    "\u{0130}",
    "\u{fb03}",
    "e\u{301}",
    "\u{200b}",
    "\u{1F600}",
    "\r",
    "\u{feff}",
    "\\",
    "\"",
    "\\u0000",
    "\\ud800",
    "\\uDFFF",
    "#",
    "|",
    "\t",
    "..",
    "/",
    ".jpg",
    ".JPG",
    "../x.jpg",
    "a/b.png",
    "C:\\x.jpg",
    "restval",
    "test",
    "val",
    "TRAIN",
    "<unk>",
    "<pad>",
    "null",
    "[]",
    "{}",
    "\u{85}",
    "image_name| comment_number| comment",
];

const LINE_ENDINGS: [&[u8]; 5] = [b"\r\n", b"\r", b"", b"\n\n", b"\n\r\n"];

fn split_lines(data: &[u8]) -> Vec<Vec<u8>> {
    data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// Non-overlapping occurrences of `needle`.
fn find_all(data: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while !needle.is_empty() && at + needle.len() <= data.len() {
        if &data[at..at + needle.len()] == needle {
            out.push(at);
            at += needle.len();
        } else {
            at += 1;
        }
    }
    out
}

/// Maximal runs of bytes satisfying `pred`, as `(start, end)`.
fn runs(data: &[u8], pred: impl Fn(u8) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &b) in data.iter().enumerate() {
        match (pred(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, data.len()));
    }
    out
}

/// One line-, field- or token-level mutation of a text format.
fn mutate_text(rng: &mut Rng, data: &mut Vec<u8>, partner: &[u8]) {
    let len = data.len();
    match rng.below(13) {
        // Duplicate a line (once or a few times), somewhere.
        0 => {
            let mut lines = split_lines(data);
            let line = lines[rng.below(lines.len())].clone();
            for _ in 0..rng.range(1, 3) {
                let at = rng.below(lines.len() + 1);
                lines.insert(at, line.clone());
            }
            *data = lines.join(&b'\n');
        }
        // Delete a line.
        1 => {
            let mut lines = split_lines(data);
            lines.remove(rng.below(lines.len()));
            *data = lines.join(&b'\n');
        }
        // Swap two lines.
        2 => {
            let mut lines = split_lines(data);
            let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(i, j);
            *data = lines.join(&b'\n');
        }
        // Swap separators (tab, comma, pipe, ...): one occurrence or all.
        3 => {
            let from = *rng.pick(&SEPARATORS);
            let to = *rng.pick(&SEPARATORS);
            let hits = find_all(data, from);
            if hits.is_empty() {
                return mutate_bytes(rng, data, partner);
            }
            let chosen: Vec<usize> = if rng.one_in(2) {
                hits
            } else {
                vec![*rng.pick(&hits)]
            };
            for &at in chosen.iter().rev() {
                data.splice(at..at + from.len(), to.iter().copied());
            }
        }
        // Replace a number by a huge, negative or odd one.
        4 => {
            let number = rng.pick(&NUMBERS).as_bytes();
            let digits = runs(data, |b| b.is_ascii_digit());
            if digits.is_empty() {
                let at = rng.below(len + 1);
                data.splice(at..at, number.iter().copied());
            } else {
                let (a, b) = *rng.pick(&digits);
                data.splice(a..b, number.iter().copied());
            }
        }
        // Empty a field: delete from a separator to the next one (or the line end).
        5 => {
            let is_sep = |b: u8| b"\t|,#:\"".contains(&b);
            let seps: Vec<usize> = (0..len).filter(|&i| is_sep(data[i])).collect();
            if seps.is_empty() {
                return mutate_bytes(rng, data, partner);
            }
            let p = *rng.pick(&seps);
            let end = (p + 1..len)
                .find(|&q| is_sep(data[q]) || data[q] == b'\n')
                .unwrap_or(len);
            data.drain(p + 1..end);
        }
        // Non-UTF-8 bytes, inserted or overwriting.
        6 => {
            let bad = *rng.pick(&NON_UTF8);
            let at = rng.below(len + 1);
            if rng.one_in(2) && at < len {
                let end = (at + bad.len()).min(len);
                data.splice(at..end, bad.iter().copied());
            } else {
                data.splice(at..at, bad.iter().copied());
            }
        }
        // A very long line (or a very long field inside a line).
        7 => {
            let n = *rng.pick(&[1_000usize, 65_536, 300_000]);
            let pattern = *rng.pick(&[
                "a",
                "a ",
                "\u{e9}",
                "9",
                "\t",
                "|",
                "x.jpg#0\t",
                "\u{1F600}",
            ]);
            let long = pattern.repeat(n / pattern.len());
            let at = if rng.one_in(2) {
                // At a line start.
                let starts: Vec<usize> = std::iter::once(0)
                    .chain((0..len).filter(|&i| data[i] == b'\n').map(|i| i + 1))
                    .collect();
                *rng.pick(&starts)
            } else {
                rng.below(len + 1)
            };
            data.splice(at..at, long.into_bytes());
        }
        // Deep JSON nesting, closed or not, in place or as the whole file.
        8 => {
            let depth = *rng.pick(&[64usize, 127, 128, 129, 1_000, 50_000]);
            let (open, close) = *rng.pick(&[("[", "]"), ("{\"a\":", "}"), ("{\"images\":[", "]}")]);
            let mut nest = open.repeat(depth);
            if rng.one_in(3) {
                nest.push('1');
                nest.push_str(&close.repeat(depth));
            }
            if rng.one_in(4) {
                *data = nest.into_bytes();
            } else {
                let at = rng.below(len + 1);
                data.splice(at..at, nest.into_bytes());
            }
        }
        // Line endings: CRLF, lone CR, none, blank lines.
        9 => {
            let to = *rng.pick(&LINE_ENDINGS);
            let hits = find_all(data, b"\n");
            let chosen: Vec<usize> = match hits.len() {
                0 => Vec::new(),
                _ if rng.one_in(2) => hits,
                _ => vec![*rng.pick(&hits)],
            };
            for &at in chosen.iter().rev() {
                data.splice(at..at + 1, to.iter().copied());
            }
        }
        // A weird string: inserted, or replacing a word.
        10 => {
            let weird = rng.pick(&WEIRD).as_bytes();
            let words = runs(data, |b| b.is_ascii_alphanumeric() || b == b'.');
            if rng.one_in(2) && !words.is_empty() {
                let (a, b) = *rng.pick(&words);
                data.splice(a..b, weird.iter().copied());
            } else {
                let at = rng.below(len + 1);
                data.splice(at..at, weird.iter().copied());
            }
        }
        // Lines of another seed spliced in.
        11 => {
            let mut lines = split_lines(data);
            let theirs = split_lines(partner);
            let (a, b) = span(rng, theirs.len(), 8);
            let at = rng.below(lines.len() + 1);
            lines.splice(at..at, theirs[a..b].iter().cloned());
            *data = lines.join(&b'\n');
        }
        // Delete a word.
        _ => {
            let words = runs(data, |b| b.is_ascii_alphanumeric());
            if words.is_empty() {
                return mutate_bytes(rng, data, partner);
            }
            let (a, b) = *rng.pick(&words);
            data.drain(a..b);
        }
    }
}

// ---------------------------------------------------------------------------
// JSON value mutations
// ---------------------------------------------------------------------------

fn random_scalar(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => Value::Null,
        1 => Value::Bool(true),
        2 => Value::Bool(false),
        3 => json!(0),
        4 => json!(-1),
        5 => json!(1),
        6 => json!(u64::MAX),
        7 => json!(i64::MIN),
        8 => json!(4_294_967_296u64),
        9 => json!(1e300),
        10 => json!(-1e-300),
        11 => json!(0.5),
        12 => json!(""),
        _ => json!(rng.next_u64()),
    }
}

fn random_string(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => rng.pick(&IMAGES).to_string(),
        1 => "x".repeat(rng.range(1, 100_000)),
        2 => rng.pick(&NUMBERS).to_string(),
        3 => format!("{}{}", rng.pick(&WEIRD), rng.pick(&IMAGES)),
        4 => String::new(),
        _ => rng.pick(&WEIRD).to_string(),
    }
}

/// Mutates one node of a JSON tree, found by a random walk from the root.
fn mutate_value(rng: &mut Rng, v: &mut Value, depth: usize) {
    let descend = depth < 64 && !rng.one_in(3);
    match v {
        Value::Array(items) if descend && !items.is_empty() => {
            let i = rng.below(items.len());
            return mutate_value(rng, &mut items[i], depth + 1);
        }
        Value::Object(map) if descend && !map.is_empty() => {
            let i = rng.below(map.len());
            if let Some(child) = map.values_mut().nth(i) {
                return mutate_value(rng, child, depth + 1);
            }
        }
        _ => {}
    }
    match rng.below(12) {
        0 => *v = random_scalar(rng),
        1 => *v = Value::String(random_string(rng)),
        2 => *v = Value::Array(Vec::new()),
        3 => *v = Value::Object(Map::new()),
        // Deep nesting around the value.
        4 => {
            for _ in 0..*rng.pick(&[10usize, 100, 126, 127, 128, 300]) {
                *v = Value::Array(vec![v.take()]);
            }
        }
        // Array surgery: duplicate, remove, repeat an element.
        5 => match v {
            Value::Array(items) if !items.is_empty() => {
                let i = rng.below(items.len());
                match rng.below(3) {
                    0 => {
                        let copy = items[i].clone();
                        items.insert(rng.below(items.len() + 1), copy);
                    }
                    1 => {
                        items.remove(i);
                    }
                    _ => {
                        let copy = items[i].clone();
                        for _ in 0..rng.range(2, 100) {
                            items.push(copy.clone());
                        }
                    }
                }
            }
            _ => *v = Value::Array(vec![v.take()]),
        },
        // Object surgery: remove, rename or add a key.
        6 => match v {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(rng.below(map.len())).cloned();
                if let Some(key) = key {
                    let value = map.remove(&key);
                    match (rng.below(3), value) {
                        (0, _) => {}
                        (1, Some(value)) => {
                            map.insert(format!("{key}{}", rng.pick(&WEIRD)), value);
                        }
                        (_, Some(value)) => {
                            map.insert(key.to_uppercase(), value.clone());
                            map.insert(key, value);
                        }
                        (_, None) => {}
                    }
                }
            }
            _ => {
                let mut map = Map::new();
                map.insert(random_string(rng), v.take());
                *v = Value::Object(map);
            }
        },
        // Strings: embedded JSON (safetensors metadata) is mutated as JSON,
        // other strings as text.
        7 => match v {
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(mut inner) if inner.is_array() || inner.is_object() => {
                    mutate_value(rng, &mut inner, depth + 1);
                    *s = inner.to_string();
                }
                _ => {
                    let mut bytes = std::mem::take(s).into_bytes();
                    mutate_text(rng, &mut bytes, b"");
                    *s = String::from_utf8_lossy(&bytes).into_owned();
                }
            },
            _ => *v = Value::String(random_string(rng)),
        },
        // Numbers: extremes, negation, floats.
        8 => {
            *v = match v.as_u64() {
                Some(n) => match rng.below(5) {
                    0 => json!(n.wrapping_add(1)),
                    1 => json!(n.wrapping_sub(1)),
                    2 => json!(-(n as f64)),
                    3 => json!(n.wrapping_mul(0x1_0000_0001)),
                    _ => json!(n as f64 + 0.5),
                },
                None => json!(*rng.pick(&INTERESTING)),
            }
        }
        // Type confusion: a number as a string and back.
        9 => {
            *v = match &*v {
                Value::Number(n) => Value::String(n.to_string()),
                Value::String(s) => s.parse::<u64>().map_or(Value::Null, |n| json!(n)),
                other => Value::String(other.to_string()),
            }
        }
        10 => *v = Value::Bool(rng.one_in(2)),
        _ => *v = Value::Null,
    }
}

/// Parses `data` as JSON, mutates it structurally and writes it back (compact
/// or pretty). False when `data` is not JSON.
fn mutate_json(rng: &mut Rng, data: &mut Vec<u8>) -> bool {
    let Ok(mut value) = serde_json::from_slice::<Value>(data) else {
        return false;
    };
    for _ in 0..rng.range(1, 3) {
        mutate_value(rng, &mut value, 0);
    }
    let written = if rng.one_in(2) {
        serde_json::to_vec(&value)
    } else {
        serde_json::to_vec_pretty(&value)
    };
    match written {
        Ok(bytes) => {
            *data = bytes;
            true
        }
        Err(_) => false,
    }
}

/// A structural JSON mutation, or a text one when `data` is not JSON.
fn mutate_json_or_text(rng: &mut Rng, data: &mut Vec<u8>, partner: &[u8]) {
    if !mutate_json(rng, data) {
        mutate_text(rng, data, partner);
    }
}

// ---------------------------------------------------------------------------
// Binary-format-aware mutations
// ---------------------------------------------------------------------------

/// Mutates a safetensors file: its JSON header (structurally, including the
/// JSON inside metadata strings), its declared header length or its data.
fn mutate_safetensors(rng: &mut Rng, data: &mut Vec<u8>, partner: &[u8]) {
    let declared = data
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= data.len() - 8);
    let Some(n) = declared else {
        return mutate_bytes(rng, data, partner);
    };
    let mut header = data[8..8 + n].to_vec();
    let mut body = data[8 + n..].to_vec();
    match rng.below(10) {
        0..=5 => mutate_json_or_text(rng, &mut header, partner),
        6 => mutate_text(rng, &mut header, partner),
        7 => mutate_bytes(rng, &mut body, partner),
        8 => {
            if rng.one_in(2) {
                body.truncate(rng.below(body.len() + 1));
            } else {
                body.extend((0..rng.range(1, 64)).map(|_| rng.byte()));
            }
        }
        _ => {}
    }
    if rng.one_in(2) {
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
    }
    let mut length = header.len() as u64;
    if rng.one_in(6) {
        length = *rng.pick(&[
            0,
            1,
            7,
            length.wrapping_sub(1),
            length + 1,
            length + 8,
            u64::MAX,
            1 << 32,
            100_000_000,
            100_000_001,
        ]);
    }
    let mut out = length.to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(&body);
    *data = out;
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// PNG chunks as `(offset of the length field, data length)`.
fn png_chunks(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = PNG_MAGIC.len();
    while at + 12 <= data.len() {
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        if len > data.len() - at - 12 {
            break;
        }
        out.push((at, len));
        at += 12 + len;
    }
    out
}

/// Mutates one PNG chunk (IHDR fields, content, type, presence), usually
/// fixing its length and CRC so the decoder looks past them.
fn mutate_png(rng: &mut Rng, data: &mut Vec<u8>, partner: &[u8]) {
    let chunks = png_chunks(data);
    if chunks.is_empty() || !data.starts_with(PNG_MAGIC) {
        return mutate_bytes(rng, data, partner);
    }
    let op = rng.below(6);
    let (at, len) = if op == 0 {
        chunks[0]
    } else {
        *rng.pick(&chunks)
    };
    let mut kind = data[at + 4..at + 8].to_vec();
    let mut body = data[at + 8..at + 8 + len].to_vec();
    let old_crc = data[at + 8 + len..at + 12 + len].to_vec();
    let rest = data[at + 12 + len..].to_vec();
    let mut fix_crc = true;
    let mut copies = 1;
    match op {
        // IHDR: width, height, bit depth, colour type, compression, filter, interlace.
        0 if body.len() >= 13 => {
            let field = rng.below(7);
            if field < 2 {
                let v = *rng.pick(&[0u32, 1, 2, 4097, 16_385, 100_000, 0x7fff_ffff, u32::MAX]);
                body[field * 4..field * 4 + 4].copy_from_slice(&v.to_be_bytes());
            } else {
                body[6 + field] = if rng.one_in(2) {
                    rng.below(20) as u8
                } else {
                    rng.byte()
                };
            }
        }
        1 => mutate_bytes(rng, &mut body, partner),
        2 => copies = 0,
        3 => copies = rng.range(2, 3),
        4 => {
            let i = rng.below(4);
            kind[i] = if rng.one_in(2) {
                kind[i] ^ 0x20
            } else {
                rng.byte()
            };
        }
        _ => {
            mutate_bytes(rng, &mut body, partner);
            fix_crc = false;
        }
    }
    let mut chunk = (body.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(&kind);
    chunk.extend_from_slice(&body);
    if fix_crc {
        chunk.extend_from_slice(&crc32fast::hash(&[&kind[..], &body[..]].concat()).to_be_bytes());
    } else {
        chunk.extend_from_slice(&old_crc);
    }
    data.truncate(at);
    for _ in 0..copies {
        data.extend_from_slice(&chunk);
    }
    data.extend_from_slice(&rest);
}

/// Marker positions (the 0xFF) of a JPEG.
fn jpeg_markers(data: &[u8]) -> Vec<usize> {
    (0..data.len().saturating_sub(1))
        .filter(|&i| data[i] == 0xff && data[i + 1] != 0 && data[i + 1] != 0xff)
        .collect()
}

/// Mutates one JPEG segment: its length, the frame size, its presence, its
/// marker code, its content; or truncates the stream at a marker.
fn mutate_jpeg(rng: &mut Rng, data: &mut Vec<u8>, partner: &[u8]) {
    let markers = jpeg_markers(data);
    if markers.is_empty() {
        return mutate_bytes(rng, data, partner);
    }
    let m = *rng.pick(&markers);
    let next = markers
        .iter()
        .copied()
        .find(|&p| p > m)
        .unwrap_or(data.len());
    let write_u16 = |data: &mut Vec<u8>, at: usize, v: u16| {
        for (k, b) in v.to_be_bytes().into_iter().enumerate() {
            if let Some(slot) = data.get_mut(at + k) {
                *slot = b;
            }
        }
    };
    match rng.below(9) {
        // The segment length field.
        0 => {
            let v = *rng.pick(&[0u16, 1, 2, 3, 0x7fff, 0x8000, 0xffff]);
            write_u16(data, m + 2, v);
        }
        // The frame header: height, width, component count.
        1 => {
            let sof = markers
                .iter()
                .copied()
                .find(|&p| matches!(data[p + 1], 0xc0..=0xc2));
            if let Some(p) = sof {
                match rng.below(3) {
                    0 => write_u16(data, p + 5, *rng.pick(&[0u16, 1, 8193, 16_385, 0xffff])),
                    1 => write_u16(data, p + 7, *rng.pick(&[0u16, 1, 8193, 16_385, 0xffff])),
                    _ => {
                        if let Some(slot) = data.get_mut(p + 9) {
                            *slot = *rng.pick(&[0u8, 2, 4, 5, 255]);
                        }
                    }
                }
            }
        }
        2 => {
            data.drain(m..next);
        }
        3 => {
            let segment = data[m..next].to_vec();
            data.splice(next..next, segment);
        }
        4 => data.truncate((m + rng.below(4)).min(data.len())),
        5 => {
            data[m + 1] = if rng.one_in(2) {
                rng.byte()
            } else {
                *rng.pick(&[0xd9, 0xd8, 0xda, 0xc4, 0xdb, 0xdd, 0xe1, 0xc2, 0xd0, 0x01])
            };
        }
        // Entropy-coded data: bytes changed without making a marker, so the
        // stream still passes the completeness check and reaches the decoder.
        7 | 8 => {
            let Some(sos) = markers.iter().copied().find(|&p| data[p + 1] == 0xda) else {
                return mutate_bytes(rng, data, partner);
            };
            let Some(length) = data.get(sos + 2..sos + 4) else {
                return;
            };
            let start = sos + 2 + usize::from(u16::from_be_bytes([length[0], length[1]]));
            let end = markers
                .iter()
                .copied()
                .find(|&p| p >= start && !matches!(data[p + 1], 0xd0..=0xd7))
                .unwrap_or(data.len());
            for _ in 0..rng.range(1, 8) {
                if end <= start + 1 {
                    break;
                }
                let i = rng.range(start + 1, end - 1);
                if data[i - 1] != 0xff && data[i] != 0xff {
                    data[i] = rng.byte().min(0xfe);
                }
            }
        }
        _ => {
            if next > m + 2 {
                let i = rng.range(m + 2, next - 1);
                data[i] = if rng.one_in(2) { rng.byte() } else { 0xff };
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Readers
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Karpathy,
    Token,
    Kaggle,
    Vocab,
    Cache,
    Image,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Karpathy,
        Kind::Token,
        Kind::Kaggle,
        Kind::Vocab,
        Kind::Cache,
        Kind::Image,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Karpathy => "karpathy_json",
            Kind::Token => "token_file",
            Kind::Kaggle => "kaggle_csv",
            Kind::Vocab => "vocab",
            Kind::Cache => "feature_cache",
            Kind::Image => "image_decode",
        }
    }

    /// The file the reader reads, in its temp dir.
    fn file(self) -> &'static str {
        match self {
            Kind::Karpathy => storyteller_data::KARPATHY_FILE,
            Kind::Token => storyteller_data::TOKEN_FILE,
            Kind::Kaggle => storyteller_data::KAGGLE_FILE,
            Kind::Vocab => "vocab.json",
            Kind::Cache => "features.safetensors",
            Kind::Image => "image.bin",
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Kind::Karpathy | Kind::Vocab => "json",
            Kind::Token => "token",
            Kind::Kaggle => "csv",
            Kind::Cache => "safetensors",
            Kind::Image => "img",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// The reader refused the input; its message.
    Error(String),
}

#[derive(Debug, Default)]
struct Stats {
    inputs: usize,
    panics: usize,
    errors: usize,
    ok: usize,
    bytes: usize,
    slowest: Duration,
    /// Error messages (cut short) and their counts, with `STORYTELLER_FUZZ_VERBOSE=1`.
    error_kinds: BTreeMap<String, usize>,
}

/// One reader: its temp dir (reused: the file is overwritten every iteration),
/// its seeds and a small pool of accepted inputs to mutate further.
struct Reader {
    kind: Kind,
    dir: TempDir,
    seeds: Vec<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    stats: Stats,
}

fn key() -> CacheKey {
    CacheKey::new("sha256:fuzz", &PreprocessConfig::default(), 4)
}

fn odd_split_configs() -> [SplitConfig; 8] {
    let c = |train, val, test| SplitConfig { train, val, test };
    [
        c(0, 0, 0),
        c(1, 0, 0),
        c(0, 1, 0),
        c(0, 0, 1),
        c(8, 1, 1),
        c(usize::MAX, 1, 1),
        c(usize::MAX, usize::MAX, usize::MAX),
        c(1, usize::MAX, 0),
    ]
}

impl Reader {
    fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        if matches!(kind, Kind::Karpathy | Kind::Token | Kind::Kaggle) {
            let images = dir.path().join(if kind == Kind::Kaggle {
                "Images"
            } else {
                "flickr30k_images"
            });
            std::fs::create_dir_all(&images).expect("image dir");
            for name in IMAGES {
                std::fs::write(images.join(name), b"not decoded").expect("image file");
            }
        }
        let seeds = seeds(kind);
        Self {
            kind,
            dir,
            seeds,
            pool: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join(self.kind.file())
    }

    /// Reads `input` with options derived from its hash (0: the defaults).
    fn read(&self, input: &[u8]) -> Outcome {
        self.read_with(input, fnv1a(input))
    }

    fn read_with(&self, input: &[u8], knobs: u64) -> Outcome {
        if self.kind != Kind::Image {
            std::fs::write(self.path(), input).expect("write the input");
        }
        match self.kind {
            Kind::Karpathy | Kind::Token | Kind::Kaggle => self.read_dataset(knobs),
            Kind::Vocab => self.read_vocab(),
            Kind::Cache => self.read_cache(),
            Kind::Image => read_image(input, knobs),
        }
    }

    fn read_dataset(&self, knobs: u64) -> Outcome {
        let options = LoadOptions {
            split: if (knobs >> 4) & 3 == 3 {
                odd_split_configs()[((knobs >> 6) % 8) as usize]
            } else {
                SplitConfig::default()
            },
            check_images: (knobs >> 3) & 1 == 0,
            strict: knobs & 7 == 7,
        };
        let data = match Flickr30k::open_with(self.dir.path(), &options) {
            Ok(data) => data,
            Err(e) => {
                let _ = format!("{e:?}");
                return Outcome::Error(e.to_string());
            }
        };
        assert_eq!(data.layout().file_name(), self.kind.file());
        let images = data.images();
        assert!(!images.is_empty(), "a dataset was opened with no image");
        if options.strict {
            assert!(data.warnings().is_empty(), "strict mode kept warnings");
        }
        let mut ids = HashSet::new();
        for image in images {
            assert!(ids.insert(image.id.as_str()), "duplicate id {:?}", image.id);
            assert!(!image.captions.is_empty(), "{:?} has no caption", image.id);
            for caption in &image.captions {
                assert!(
                    !caption.tokens.is_empty(),
                    "empty caption {:?}",
                    caption.raw
                );
                assert_eq!(caption.tokens, tokenize(&caption.raw));
            }
            assert_eq!(data.image(&image.id).map(|i| &i.id), Some(&image.id));
            if options.check_images {
                assert!(image.path.is_file(), "{} is missing", image.path.display());
            }
        }
        let mut total = 0;
        for split in Split::ALL {
            let part = data.split(split);
            assert_eq!(part.len(), part.images().len());
            assert!(part.images().iter().all(|i| i.split == split));
            for i in 0..part.len() {
                assert!(part.get(i).is_ok());
            }
            let pairs = part.caption_pairs();
            assert_eq!(pairs.len(), part.caption_count());
            for i in 0..pairs.len() {
                assert!(pairs.get(i).is_ok());
            }
            total += part.len();
        }
        assert_eq!(total, images.len(), "splits do not cover the images");
        for w in data.warnings() {
            let _ = w.to_string();
        }
        let summary = data.summary(1);
        assert_eq!(summary.images, images.len());
        assert_eq!(summary.skipped.len(), data.warnings().len());
        serde_json::to_string(&summary).expect("a summary serialises");
        Outcome::Ok
    }

    fn read_vocab(&self) -> Outcome {
        let path = self.path();
        let vocab = match Vocab::load(&path) {
            Ok(vocab) => vocab,
            Err(e) => {
                let _ = format!("{e:?}");
                return Outcome::Error(e.to_string());
            }
        };
        assert!(vocab.len() >= SPECIALS.len());
        assert_eq!(&vocab.words()[..SPECIALS.len()], SPECIALS);
        for (i, word) in vocab.words().iter().enumerate().take(1_000) {
            assert_eq!(vocab.id(word), Some(i as u32), "{word:?}");
            let _ = vocab.count(word);
        }
        let back = Vocab::from_json(&vocab.to_json(), &path).expect("to_json reads back");
        assert_eq!(back, vocab, "to_json/from_json round trip");
        let text: Vec<&str> = vocab.words().iter().take(50).map(String::as_str).collect();
        let ids = vocab.encode_with_bounds(&text.join(" "));
        let _ = vocab.decode(&ids);
        let _ = vocab.decode(&[0, 1, 3, 4, u32::MAX, 2, 5]);
        Outcome::Ok
    }

    fn read_cache(&self) -> Outcome {
        let path = self.path();
        let cache = match FeatureCache::open(&path) {
            Ok(cache) => cache,
            Err(e) => {
                let message = e.to_string();
                let _ = format!("{e:?}");
                // The resume path reads the same file.
                if let Err(e) = FeatureCacheWriter::open_or_create(&path, key()) {
                    let _ = e.to_string();
                }
                return Outcome::Error(message);
            }
        };
        let (n, width) = (cache.len(), cache.row_len());
        assert_eq!(cache.image_ids().len(), n);
        assert_eq!(cache.is_empty(), n == 0);
        let all = cache.to_vec();
        assert_eq!(all.len(), n * width, "to_vec length");
        for (i, id) in cache.image_ids().iter().enumerate().take(64) {
            assert_eq!(cache.index_of(id), Some(i));
            let row = cache.row(i).expect("row in range");
            let get = cache.get(id).expect("id present");
            let expected = &all[i * width..(i + 1) * width];
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&row), bits(expected), "row {i}");
            assert_eq!(bits(&get), bits(expected), "get {id:?}");
        }
        assert!(cache.row(n).is_none());
        let own = cache.key().clone();
        drop(cache);
        FeatureCache::open_expecting(&path, &own).expect("a cache matches its own key");
        if let Err(e) = FeatureCacheWriter::open_or_create(&path, key()) {
            let _ = e.to_string();
        }
        Outcome::Ok
    }

    /// The next input: a seed, or a mutated seed or pool entry.
    fn next_input(&self, rng: &mut Rng, all_seeds: &[Vec<u8>]) -> Vec<u8> {
        if rng.one_in(64) {
            return rng.pick(&self.seeds).clone();
        }
        let mut data = if !self.pool.is_empty() && rng.one_in(3) {
            rng.pick(&self.pool).clone()
        } else {
            rng.pick(&self.seeds).clone()
        };
        let mut rounds = 1;
        while rounds < 8 && rng.one_in(2) {
            rounds += 1;
        }
        for _ in 0..rounds {
            let partner = if rng.one_in(4) {
                rng.pick(all_seeds)
            } else {
                rng.pick(&self.seeds)
            };
            mutate(self.kind, rng, &mut data, partner);
            data.truncate(MAX_INPUT);
        }
        data
    }

    fn remember(&mut self, iteration: usize, input: Vec<u8>) {
        if self.pool.len() < POOL {
            self.pool.push(input);
        } else {
            self.pool[iteration / Kind::ALL.len() % POOL] = input;
        }
    }
}

fn mutate(kind: Kind, rng: &mut Rng, data: &mut Vec<u8>, partner: &[u8]) {
    let roll = rng.below(20);
    match kind {
        Kind::Karpathy | Kind::Vocab => match roll {
            0..=10 => mutate_json_or_text(rng, data, partner),
            11..=15 => mutate_text(rng, data, partner),
            _ => mutate_bytes(rng, data, partner),
        },
        Kind::Token | Kind::Kaggle => match roll {
            0..=12 => mutate_text(rng, data, partner),
            _ => mutate_bytes(rng, data, partner),
        },
        Kind::Cache => match roll {
            0..=12 => mutate_safetensors(rng, data, partner),
            _ => mutate_bytes(rng, data, partner),
        },
        Kind::Image => match roll {
            0..=10 if data.starts_with(PNG_MAGIC) => mutate_png(rng, data, partner),
            0..=10 => mutate_jpeg(rng, data, partner),
            _ => mutate_bytes(rng, data, partner),
        },
    }
}

/// Decodes with limits small enough to keep the loop fast (tiny ones for one
/// input in eight, to exercise the limit checks), then preprocesses.
fn read_image(input: &[u8], knobs: u64) -> Outcome {
    let limits = if knobs & 7 == 7 {
        DecodeLimits {
            max_width: 4,
            max_height: 4,
            max_pixels: 12,
            max_alloc: 1 << 20,
        }
    } else {
        DecodeLimits {
            max_width: 4096,
            max_height: 4096,
            max_pixels: 1 << 22,
            max_alloc: 64 << 20,
        }
    };
    let path = Path::new("fuzz-input");
    let dims = image_dimensions(input, path);
    let image = match decode_rgb_bytes(input, path, &limits) {
        Ok(image) => image,
        Err(e) => {
            let _ = format!("{e:?}");
            return Outcome::Error(e.to_string());
        }
    };
    let (w, h) = image.dimensions();
    assert!(w > 0 && h > 0, "decoded an empty {w}x{h} image");
    assert!(
        w <= limits.max_width && h <= limits.max_height,
        "{w}x{h} past the limits"
    );
    assert_eq!(image.as_raw().len(), w as usize * h as usize * 3);
    if let Ok((dw, dh)) = dims {
        assert!(
            (dw, dh) == (w, h) || (dh, dw) == (w, h),
            "header says {dw}x{dh}, decoded {w}x{h}"
        );
    }
    let config = PreprocessConfig::imagenet(16);
    let out = preprocess(&image, &config);
    assert_eq!(out.len(), config.values_per_image());
    assert!(
        out.iter().all(|v| v.is_finite()),
        "non-finite preprocessed value"
    );
    Outcome::Ok
}

// ---------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------

const CAPTIONS: [(&str, &[&str]); 5] = [
    (
        "1000092795.jpg",
        &[
            "Two young guys with shaggy hair look at their hands while hanging out in the yard .",
            "Two young , White males are outside near many bushes .",
        ],
    ),
    (
        "10002456.jpg",
        &["Several men in hard hats are operating a giant pulley system ."],
    ),
    (
        "1000268201.jpg",
        &["A child in a pink dress is climbing up a set of stairs in an entry way ."],
    ),
    (
        "1000344755.jpg",
        &["Someone in a blue shirt and hat is standing on stair and leaning against a window ."],
    ),
    ("2199200615.jpg", &["A dog runs across the grass ."]),
];

fn seeds(kind: Kind) -> Vec<Vec<u8>> {
    match kind {
        Kind::Karpathy => karpathy_seeds(),
        Kind::Token => {
            let mut plain = String::new();
            for (image, captions) in CAPTIONS {
                for (n, caption) in captions.iter().enumerate() {
                    plain.push_str(&format!("{image}#{n}\t{caption}\n"));
                }
            }
            let crlf = format!("\u{feff}{}", plain.replace('\n', "\r\n"));
            vec![plain.into_bytes(), crlf.into_bytes()]
        }
        Kind::Kaggle => {
            let mut plain = String::from("image_name| comment_number| comment\n");
            for (image, captions) in CAPTIONS {
                for (n, caption) in captions.iter().enumerate() {
                    plain.push_str(&format!("{image}| {n}| {caption}\n"));
                }
            }
            // The known broken row, recovered with a warning.
            let broken = plain.replace("2199200615.jpg| 0| A dog", "2199200615.jpg| 4   A dog");
            vec![plain.into_bytes(), broken.into_bytes()]
        }
        Kind::Vocab => vocab_seeds(),
        Kind::Cache => cache_seeds(),
        Kind::Image => image_seeds(),
    }
}

fn karpathy_seeds() -> Vec<Vec<u8>> {
    let splits = ["train", "val", "test", "restval", "train"];
    let mut sentid = 0;
    let images: Vec<Value> = CAPTIONS
        .iter()
        .zip(splits)
        .enumerate()
        .map(|(imgid, ((image, captions), split))| {
            let sentences: Vec<Value> = captions
                .iter()
                .map(|raw| {
                    sentid += 1;
                    json!({"tokens": tokenize(raw), "raw": raw, "imgid": imgid, "sentid": sentid})
                })
                .collect();
            json!({"sentids": [sentid], "imgid": imgid, "sentences": sentences, "split": split, "filename": image})
        })
        .collect();
    let full = json!({"images": images, "dataset": "flickr30k"});
    // Tokens only (no `raw`), pretty-printed.
    let mut tokens_only = full.clone();
    if let Some(images) = tokens_only["images"].as_array_mut() {
        for image in images {
            if let Some(sentences) = image["sentences"].as_array_mut() {
                for s in sentences {
                    if let Some(s) = s.as_object_mut() {
                        s.remove("raw");
                    }
                }
            }
        }
    }
    vec![
        serde_json::to_vec(&full).expect("seed JSON"),
        serde_json::to_vec_pretty(&tokens_only).expect("seed JSON"),
    ]
}

fn vocab_seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let captions: Vec<&str> = CAPTIONS
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .collect();
    let mut out = Vec::new();
    for min_count in [1, 2] {
        let path = dir.path().join(format!("vocab{min_count}.json"));
        Vocab::from_captions(&captions, min_count)
            .save(&path)
            .expect("save a vocabulary");
        out.push(std::fs::read(&path).expect("read the vocabulary"));
    }
    // Without counts (they are optional).
    let mut value: Value = serde_json::from_slice(&out[0]).expect("vocab JSON");
    if let Some(map) = value.as_object_mut() {
        map.remove("counts");
    }
    out.push(serde_json::to_vec(&value).expect("vocab JSON"));
    out
}

fn cache_seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let rows: [[f32; 4]; 3] = [
        [0.0, 1.5, -2.25, 1e-30],
        [f32::MAX, -0.0, 3.0, 0.125],
        [7.0, 8.0, 9.0, 10.0],
    ];
    let mut out = Vec::new();
    // A whole cache.
    let path = dir.path().join("whole.safetensors");
    let mut writer = FeatureCacheWriter::create(&path, key()).expect("writer");
    for (id, row) in IMAGES.iter().zip(&rows) {
        writer.push(*id, row).expect("push");
    }
    writer.finish().expect("finish");
    out.push(std::fs::read(&path).expect("read the cache"));
    // One shard of a sharded extraction.
    let path = dir.path().join("shard.safetensors");
    let record = ShardRecord::new(Shard::new(1, 3).expect("shard"), IMAGES);
    let mut writer =
        FeatureCacheWriter::open_or_create_shard(&path, key(), record).expect("shard writer");
    for (id, row) in IMAGES.iter().zip(&rows).take(2) {
        writer.push(*id, row).expect("push");
    }
    writer.finish().expect("finish");
    out.push(std::fs::read(&path).expect("read the cache"));
    // An empty cache.
    let path = dir.path().join("empty.safetensors");
    FeatureCacheWriter::create(&path, key())
        .expect("writer")
        .finish()
        .expect("finish");
    out.push(std::fs::read(&path).expect("read the cache"));
    out
}

fn encode(image: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .into()
        .write_to(&mut out, format)
        .expect("encode a seed image");
    out.into_inner()
}

/// Inserts an EXIF APP1 segment with an orientation tag after the SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut app1 = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    app1.extend_from_slice(&1u16.to_be_bytes()); // one IFD entry
    app1.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    app1.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    app1.extend_from_slice(&1u32.to_be_bytes()); // one value
    app1.extend_from_slice(&orientation.to_be_bytes());
    app1.extend_from_slice(&[0, 0]);
    app1.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn image_seeds() -> Vec<Vec<u8>> {
    let rgb = ImageBuffer::from_fn(7, 5, |x, y| Rgb([(x * 36) as u8, (y * 50) as u8, 128]));
    let grey16 = ImageBuffer::from_fn(4, 3, |x, y| Luma([(x * 16_000 + y * 900) as u16]));
    let rgba = ImageBuffer::from_fn(3, 3, |x, y| Rgba([x as u8 * 80, y as u8 * 80, 20, 200]));
    let grey_alpha = ImageBuffer::from_fn(2, 5, |x, y| LumaA([(x * 100 + y) as u8, 255]));
    let jpeg = ImageBuffer::from_fn(8, 4, |x, y| Rgb([(x * 30) as u8, (y * 60) as u8, 90]));
    let jpeg_odd = ImageBuffer::from_fn(17, 9, |x, y| Rgb([(x * 15) as u8, 200, (y * 28) as u8]));
    let jpeg_grey = ImageBuffer::from_fn(6, 6, |x, y| Luma([(x * 40 + y) as u8]));
    let jpeg_bytes = encode(jpeg, ImageFormat::Jpeg);
    vec![
        encode(rgb, ImageFormat::Png),
        encode(grey16, ImageFormat::Png),
        encode(rgba, ImageFormat::Png),
        encode(grey_alpha, ImageFormat::Png),
        with_exif_orientation(&jpeg_bytes, 6),
        jpeg_bytes,
        encode(jpeg_odd, ImageFormat::Jpeg),
        encode(jpeg_grey, ImageFormat::Jpeg),
    ]
}

// ---------------------------------------------------------------------------
// Panic capture
// ---------------------------------------------------------------------------

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// What the quiet hook saw of the last panic on this thread.
struct PanicReport {
    message: String,
    location: String,
    backtrace: Option<String>,
}

thread_local! {
    static FUZZING: Cell<bool> = const { Cell::new(false) };
    static WANT_BACKTRACE: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<PanicReport>> = const { RefCell::new(None) };
}

/// Replaces the panic hook with one that records (instead of printing) panics
/// on fuzzing threads; other threads still get the previous hook. Dropping it
/// puts the previous hook back.
struct QuietPanics {
    previous: Arc<Hook>,
}

impl QuietPanics {
    fn install() -> Self {
        let previous: Arc<Hook> = Arc::new(panic::take_hook());
        let forward = Arc::clone(&previous);
        panic::set_hook(Box::new(move |info| {
            if !FUZZING.with(Cell::get) {
                return forward(info);
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".to_owned());
            let location = info
                .location()
                .map_or_else(String::new, ToString::to_string);
            let backtrace = WANT_BACKTRACE
                .with(Cell::get)
                .then(|| Backtrace::force_capture().to_string());
            LAST_PANIC.with(|p| {
                *p.borrow_mut() = Some(PanicReport {
                    message,
                    location,
                    backtrace,
                });
            });
        }));
        Self { previous }
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        // The hook cannot be changed while panicking.
        if !std::thread::panicking() {
            let previous = Arc::clone(&self.previous);
            drop(panic::take_hook());
            panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}

/// The frames of a backtrace in the code under test: not the standard
/// library, not this harness, not the test runner.
fn interesting_frames(backtrace: &str) -> String {
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in backtrace.lines() {
        let trimmed = line.trim_start();
        let is_frame = trimmed
            .split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match frames.last_mut() {
            Some(frame) if !is_frame => frame.push(line),
            _ => frames.push(vec![line]),
        }
    }
    let skipped_names = [
        "std::",
        "core::",
        "alloc::",
        "rust_begin_unwind",
        "__rustc",
        "start_thread",
        "clone",
        "__clone",
        "_start",
        "__libc",
        "main",
    ];
    frames
        .into_iter()
        .filter(|frame| {
            let name = frame[0]
                .trim_start()
                .split_once(": ")
                .map_or("", |(_, name)| name);
            !skipped_names.iter().any(|p| name.starts_with(p))
                && !frame
                    .iter()
                    .any(|l| l.contains("/rustc/") || l.contains("fuzz_readers.rs"))
        })
        .take(12)
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}

/// `$CARGO_TARGET_DIR/fuzz-failures`, else next to the test binary's target
/// dir, else in the temp dir.
fn failures_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            // target/<profile>/deps/fuzz_readers-<hash>
            let exe = std::env::current_exe().ok()?;
            exe.parent()?.parent()?.parent().map(Path::to_owned)
        })
        .unwrap_or_else(std::env::temp_dir)
        .join("fuzz-failures")
}

fn save(dir: &Path, name: &str, input: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input)) {
        eprintln!("could not save {}: {e}", path.display());
    }
    path
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim().replace('_', "");
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn readers_do_not_panic_on_mutated_input() {
    let total =
        env_number("STORYTELLER_FUZZ_ITERATIONS").map_or(DEFAULT_ITERATIONS, |n| n as usize);
    let base_seed = env_number("STORYTELLER_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let verbose = env_number("STORYTELLER_FUZZ_VERBOSE").is_some_and(|v| v != 0);
    let mut readers: Vec<Reader> = Kind::ALL.into_iter().map(Reader::new).collect();

    // The harness itself: every seed is read cleanly with the default options.
    for reader in &readers {
        for (i, seed) in reader.seeds.iter().enumerate() {
            assert_eq!(
                reader.read_with(seed, 0),
                Outcome::Ok,
                "seed {i} of {} is not accepted",
                reader.kind.name()
            );
        }
    }
    let exif = &readers[5].seeds[4];
    let decoded = decode_rgb_bytes(exif, Path::new("exif.jpg"), &DecodeLimits::default())
        .expect("the EXIF seed decodes");
    assert_eq!(
        decoded.dimensions(),
        (4, 8),
        "EXIF orientation 6 rotates 8x4"
    );

    let all_seeds: Vec<Vec<u8>> = readers.iter().flat_map(|r| r.seeds.clone()).collect();
    let failures = failures_dir();
    // (reader, panic location) -> (count, first message, saved inputs).
    let mut failed: BTreeMap<(&str, String), (usize, String, Vec<PathBuf>)> = BTreeMap::new();
    let start = Instant::now();
    let quiet = QuietPanics::install();
    for iteration in 0..total {
        let reader = &mut readers[iteration % Kind::ALL.len()];
        let mut rng = Rng::new(base_seed ^ Rng::new(iteration as u64).next_u64());
        let input = reader.next_input(&mut rng, &all_seeds);
        WANT_BACKTRACE.with(|w| w.set(reader.stats.panics < 3));
        LAST_PANIC.with(|p| p.borrow_mut().take());
        let began = Instant::now();
        // Only panics inside the reader are recorded quietly; one in the
        // harness itself still reaches the default hook.
        FUZZING.with(|f| f.set(true));
        let result = panic::catch_unwind(AssertUnwindSafe(|| reader.read(&input)));
        FUZZING.with(|f| f.set(false));
        let elapsed = began.elapsed();
        let name = reader.kind.name();
        let stats = &mut reader.stats;
        stats.inputs += 1;
        stats.bytes += input.len();
        stats.slowest = stats.slowest.max(elapsed);
        if elapsed > SLOW {
            let file = format!(
                "slow-{name}-seed{base_seed:x}-iter{iteration}.{}",
                reader.kind.ext()
            );
            let path = save(&failures, &file, &input);
            eprintln!(
                "{name}: iteration {iteration} took {elapsed:?}; input saved to {}",
                path.display()
            );
        }
        match result {
            Ok(Outcome::Ok) => {
                stats.ok += 1;
                reader.remember(iteration, input);
            }
            Ok(Outcome::Error(message)) => {
                stats.errors += 1;
                if verbose {
                    let dir = reader.dir.path().display().to_string();
                    let short: String = message.replace(&dir, "<dir>").chars().take(72).collect();
                    *stats.error_kinds.entry(short).or_default() += 1;
                }
            }
            Err(_) => {
                stats.panics += 1;
                let report = LAST_PANIC.with(|p| p.borrow_mut().take());
                let (message, location) = report
                    .as_ref()
                    .map_or(("?", "?"), |r| (r.message.as_str(), r.location.as_str()));
                let entry = failed
                    .entry((name, location.to_owned()))
                    .or_insert_with(|| (0, message.to_owned(), Vec::new()));
                entry.0 += 1;
                if stats.panics > REPORTED_PANICS {
                    continue;
                }
                let file = format!(
                    "{name}-seed{base_seed:x}-iter{iteration}.{}",
                    reader.kind.ext()
                );
                let path = save(&failures, &file, &input);
                eprintln!(
                    "PANIC in {name}, iteration {iteration} ({} bytes): {message} at {location}\n  input saved to {}\n  replay: STORYTELLER_FUZZ_REPLAY={} cargo test -p storyteller-data --test fuzz_readers replay -- --nocapture",
                    input.len(),
                    path.display(),
                    path.display()
                );
                if let Some(backtrace) = report.as_ref().and_then(|r| r.backtrace.as_deref()) {
                    eprintln!("{}", interesting_frames(backtrace));
                }
                entry.2.push(path);
            }
        }
    }
    drop(quiet);
    let wall = start.elapsed();

    println!("fuzz_readers: {total} inputs, seed {base_seed:#x}, {wall:.2?}");
    for reader in &readers {
        let s = &reader.stats;
        println!(
            "{}: {} inputs, {} panics, {} errors, {} ok (mean {} bytes, slowest {:.1?})",
            reader.kind.name(),
            s.inputs,
            s.panics,
            s.errors,
            s.ok,
            s.bytes / s.inputs.max(1),
            s.slowest
        );
        let mut kinds: Vec<(&String, &usize)> = s.error_kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1));
        for (message, count) in kinds.into_iter().take(10) {
            println!("    {count:6}  {message}");
        }
    }
    let mut summary = String::new();
    for ((name, location), (count, message, saved)) in &failed {
        summary.push_str(&format!(
            "\n{name}: {count} panic(s) at {location}: {message}"
        ));
        for path in saved {
            summary.push_str(&format!("\n    {}", path.display()));
        }
    }
    assert!(failed.is_empty(), "reader panics:{summary}");
}

/// Replays one saved input (`STORYTELLER_FUZZ_REPLAY=<file>`, the file name
/// starting with the reader name) without catching its panic.
#[test]
fn replay() {
    let Some(path) = std::env::var_os("STORYTELLER_FUZZ_REPLAY").map(PathBuf::from) else {
        return;
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_prefix("slow-").unwrap_or(&name);
    let kind = Kind::ALL
        .into_iter()
        .find(|k| name.starts_with(k.name()))
        .unwrap_or_else(|| panic!("{name:?} does not start with a reader name"));
    let input = std::fs::read(&path).expect("read the saved input");
    let reader = Reader::new(kind);
    let began = Instant::now();
    let outcome = reader.read(&input);
    println!("{}: {outcome:?} in {:?}", kind.name(), began.elapsed());
}

#[test]
fn mutations_are_deterministic_and_bounded() {
    for kind in Kind::ALL {
        let reader = Reader::new(kind);
        for seed in 0..100 {
            let a = reader.next_input(&mut Rng::new(seed), &reader.seeds);
            let b = reader.next_input(&mut Rng::new(seed), &reader.seeds);
            assert_eq!(a, b, "{} seed {seed}", kind.name());
            assert!(a.len() <= MAX_INPUT);
        }
    }
    let mut rng = Rng::new(1);
    assert!((0..1000).all(|_| rng.range(3, 5) >= 3 && rng.range(3, 5) <= 5));
}
