//! The nesting bound of [`super::from_slice`]: whether a body's arrays and objects nest
//! deeper than a limit, found without parsing it.

/// Whether the arrays and objects of `body` nest deeper than `max` (brackets inside
/// strings, escaped quotes included, do not count). Invalid JSON gets some answer:
/// serde_json refuses it anyway. A body with at most `max` opening brackets cannot nest
/// deeper (one vectorised count); otherwise [`scan_deeper_than`] reads it.
pub(super) fn nests_deeper_than(body: &[u8], max: usize) -> bool {
    opening_brackets(body) > max && scan_deeper_than(body, max)
}

/// How many `[` and `{` bytes `body` holds, strings included. Counted in `u8`s per 255
/// bytes, which the compiler vectorises (a `usize` count per byte ran ten times slower).
fn opening_brackets(body: &[u8]) -> usize {
    body.chunks(255)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u8, |n, &c| n + u8::from(c | 0x20 == b'{'))
        })
        .map(usize::from)
        .sum()
}

/// The depth scan, 64 bytes at a time, as simdjson finds structure: bitmasks of the
/// quotes, backslashes and brackets of a block (SIMD compares through `wide`), the
/// escaped quotes removed, a prefix XOR of the quotes marking what is inside strings,
/// and the brackets outside them counted. Only a block that could pass `max` is walked
/// bracket by bracket. About 2.5 instructions per byte, where a byte-at-a-time scan
/// took 6.5 (BENCHMARKS.md).
pub(super) fn scan_deeper_than(body: &[u8], max: usize) -> bool {
    let mut scan = Scan {
        max: i64::try_from(max).unwrap_or(i64::MAX),
        ..Scan::default()
    };
    let mut blocks = body.chunks_exact(64);
    if blocks
        .by_ref()
        .any(|b| scan.deeper(b.try_into().unwrap_or(&[0; 64])))
    {
        return true;
    }
    let mut last = [b' '; 64];
    let rest = blocks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    scan.deeper(&last)
}

/// Where the depth scan is between blocks.
#[derive(Default)]
struct Scan {
    max: i64,
    depth: i64,
    /// All ones when the previous block ended inside a string.
    in_string: u64,
    /// Whether the previous block ended with a backslash that escapes the next byte.
    escape: bool,
}

impl Scan {
    /// Reads one block; true once the nesting passes `max`.
    fn deeper(&mut self, block: &[u8; 64]) -> bool {
        let [quote, backslash, open, close] = classes(block);
        let mut escaped = 0u64;
        if backslash != 0 || self.escape {
            // Rare in real objects: one pass over the block's bits.
            for bit in 0..64 {
                if self.escape {
                    escaped |= 1 << bit;
                    self.escape = false;
                } else {
                    self.escape = backslash >> bit & 1 == 1;
                }
            }
        }
        let strings = prefix_xor(quote & !escaped) ^ self.in_string;
        self.in_string = 0u64.wrapping_sub(strings >> 63);
        let (open, close) = (open & !strings, close & !strings);
        let (opened, closed) = (i64::from(open.count_ones()), i64::from(close.count_ones()));
        if self.depth + opened <= self.max && closed <= self.depth {
            self.depth += opened - closed;
            return false;
        }
        let mut marks = open | close;
        while marks != 0 {
            let bit = marks & marks.wrapping_neg();
            self.depth = match open & bit {
                0 => (self.depth - 1).max(0),
                _ => self.depth + 1,
            };
            if self.depth > self.max {
                return true;
            }
            marks ^= bit;
        }
        false
    }
}

/// Bitmasks of a block's quotes, backslashes, `[`/`{` and `]`/`}` (bit `i` for byte
/// `i`).
fn classes(block: &[u8; 64]) -> [u64; 4] {
    use wide::u8x16;
    let mask = |v: u8x16, c: u8| u64::from(v.simd_eq(u8x16::splat(c)).to_bitmask() as u16);
    let mut masks = [0u64; 4];
    for k in 0..4 {
        let mut lane = [0u8; 16];
        lane.copy_from_slice(&block[16 * k..16 * k + 16]);
        let v = u8x16::from(lane);
        // `[` | 0x20 is `{` and `]` | 0x20 is `}`.
        let folded = v | u8x16::splat(0x20);
        let shift = 16 * k;
        masks[0] |= mask(v, b'"') << shift;
        masks[1] |= mask(v, b'\\') << shift;
        masks[2] |= mask(folded, b'{') << shift;
        masks[3] |= mask(folded, b'}') << shift;
    }
    masks
}

/// Bit `i` of the result is the XOR of bits `0..=i` of `x`: set from an opening quote
/// up to (not including) its closing quote.
fn prefix_xor(mut x: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        x ^= x << shift;
    }
    x
}
