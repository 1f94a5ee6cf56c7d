//! A strict JSON reader for the few fields pullgate reads from a review. Values are read
//! where they stand, borrowed from the body, and everything else is skipped in the same
//! pass. It replaces a general decoder because skipping the fields nobody reads (env,
//! probes, resources: most of a pod) was most of a review's cost. Strings are found
//! through `Stops`, which marks where strings may end 64 bytes at a time (SSE2 on
//! x86-64), so that the short strings that fill a pod cost a bit lookup each; the rest
//! is read byte by byte.
//!
//! What it accepts is RFC 8259 JSON nested at most [`MAX_DEPTH`] deep, with one reading
//! of every field it reads: those fields must be valid UTF-8 without lone surrogates, and
//! the typed readers built on it refuse a repeated key. Strings it skips are checked for
//! escapes and control characters but not for UTF-8 (Go's decoder, which wrote the body,
//! replaces such bytes rather than failing).

use std::borrow::Cow;
use std::fmt;

/// Deepest nesting accepted anywhere in a body. Real objects stay near 20.
pub const MAX_DEPTH: usize = 128;

/// What went wrong, and where. Boxed, so that the `Ok` path of every read stays one
/// word wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(Box<Failure>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    kind: ErrorKind,
    message: Cow<'static, str>,
    at: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not JSON text.
    Syntax,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// JSON, but not the shape a typed reader expects (wrong type, repeated or missing
    /// field, a read string that is not UTF-8).
    Shape,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.0.message, self.0.at)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// A position in the body, to go back to (see [`Reader::rewind`]).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    at: usize,
    depth: usize,
}

pub struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
    stops: Stops,
}

/// Which of the bytes `base..base + len` are `"`, `\` or control characters, one bit
/// each: where a string may end. `len` is 64, or 0 before the first window.
///
/// Finding the end of each string by scanning from its start puts every scan on one
/// chain of dependent loads (the next string starts where this one ended); a window
/// is computed without waiting on that chain, and the strings inside it then cost a
/// shift and a bit count each. Skipping a 10 KiB pod review took a third less time.
#[derive(Clone, Copy)]
struct Stops {
    base: usize,
    len: usize,
    mask: u64,
}

impl Stops {
    const NONE: Stops = Stops {
        base: 0,
        len: 0,
        mask: 0,
    };

    /// Index of the first `"`, `\` or control character at or after `at` (`b.len()`
    /// if none); `at <= b.len()`.
    #[inline(always)]
    fn next(&mut self, b: &[u8], mut at: usize) -> usize {
        loop {
            let mut off = at.wrapping_sub(self.base);
            if off >= self.len {
                let Some(chunk) = b[at..].first_chunk::<64>() else {
                    // Within 64 bytes of the end.
                    return b.len() - string_stop(&b[at..]).len();
                };
                *self = Stops {
                    base: at,
                    len: 64,
                    mask: stop_bits(chunk),
                };
                off = 0;
            }
            let m = self.mask >> off;
            if m != 0 {
                return at + m.trailing_zeros() as usize;
            }
            at = self.base + 64;
        }
    }
}

/// One bit per byte of `chunk` that is a `"`, `\` or control character.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
// The crate's one exception to `unsafe_code = "deny"` (Cargo.toml): the SSE2 scan of
// the wire reader, kept until a serde wire layer meets SPEC §10's throughput target.
#[allow(unsafe_code)]
fn stop_bits(chunk: &[u8; 64]) -> u64 {
    // SAFETY: the cfg above admits only targets that have SSE2.
    unsafe { sse2::stop_bits(chunk) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "sse2")]
    pub fn stop_bits(chunk: &[u8; 64]) -> u64 {
        let mut bits = 0;
        for (k, part) in chunk.chunks_exact(16).enumerate() {
            let (lo, hi) = part.split_at(8);
            let word = |half: &[u8]| i64::from_le_bytes(half.try_into().expect("8 bytes"));
            let v = _mm_set_epi64x(word(hi), word(lo));
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // A byte is at most 0x1f when it is its own minimum with 0x1f.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            let any = _mm_or_si128(_mm_or_si128(quote, slash), control);
            bits |= u64::from(_mm_movemask_epi8(any) as u16) << (16 * k);
        }
        bits
    }
}

/// The same bits without SIMD: the form used on other targets, and in the tests the check
/// of the SSE2 form.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
fn plain_stop_bits(chunk: &[u8; 64]) -> u64 {
    chunk.iter().enumerate().fold(0, |bits, (k, &c)| {
        bits | u64::from(matches!(c, b'"' | b'\\' | 0..=0x1f)) << k
    })
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
use plain_stop_bits as stop_bits;

/// `text` from its first `"`, `\` or control character on (empty if none): eight bytes
/// at a time, the last few one by one. A slice rather than an index, so that what
/// follows is checked without a second bounds check. (A sixteen-byte form that the
/// compiler vectorised took fewer instructions but ran slower.)
#[inline(always)]
pub(super) fn string_stop(mut text: &[u8]) -> &[u8] {
    while let Some((chunk, tail)) = text.split_first_chunk::<8>() {
        let stops = word_stops(u64::from_le_bytes(*chunk));
        if stops != 0 {
            return &text[(stops.trailing_zeros() / 8) as usize..];
        }
        text = tail;
    }
    let plain = text
        .iter()
        .position(|&c| matches!(c, b'"' | b'\\' | 0..=0x1f));
    &text[plain.unwrap_or(text.len())..]
}

/// The high bit of each byte of `w` that may be a `"`, `\` or control character: a
/// byte of `w ^ c` is zero where `w` holds `c`, and `(x - 0x01..) & !x & 0x80..` flags
/// zero bytes (`x - 0x20..` bytes below 0x20). Borrows can only flag bytes above a real
/// match, so the lowest flag is exact.
#[inline(always)]
fn word_stops(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * u64::from(b'"'));
    let slash = w ^ (ONES * u64::from(b'\\'));
    (quote.wrapping_sub(ONES) & !quote
        | slash.wrapping_sub(ONES) & !slash
        | w.wrapping_sub(ONES * 0x20) & !w)
        & HIGH
}

/// [`Reader::string_end`] from the first byte that is not plain text.
#[inline(never)]
fn escaped_string_end(b: &[u8], mut at: usize) -> Result<usize> {
    loop {
        match b.get(at) {
            Some(b'"') => return Ok(at),
            Some(b'\\') => at = escape_end(b, at + 1)?,
            Some(_) => return Err(syntax_at("control character in a string", at)),
            None => return Err(syntax_at("unterminated string", at)),
        }
        at = b.len() - string_stop(&b[at..]).len();
    }
}

/// Checks the escape whose letter is at `at`; returns where it ends.
fn escape_end(b: &[u8], at: usize) -> Result<usize> {
    match b.get(at) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 1),
        Some(b'u') => {
            hex4(b, at + 1)?;
            Ok(at + 5)
        }
        _ => Err(syntax_at("invalid escape", at)),
    }
}

/// The four hex digits at `at`, as a number.
fn hex4(b: &[u8], at: usize) -> Result<u16> {
    let invalid = || syntax_at("invalid \\u escape", at);
    let digits = b.get(at..at + 4).ok_or_else(invalid)?;
    let mut n = 0u16;
    for &d in digits {
        let v = (d as char).to_digit(16).ok_or_else(invalid)?;
        n = n << 4 | v as u16;
    }
    Ok(n)
}

/// Index of the first byte at or after `at` that is not whitespace (or the end).
#[inline(never)]
fn after_space(b: &[u8], mut at: usize) -> usize {
    while b
        .get(at)
        .is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
    {
        at += 1;
    }
    at
}

#[cold]
fn syntax_at(message: &'static str, at: usize) -> Error {
    Reader::error_at(ErrorKind::Syntax, message.into(), at)
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader {
            b,
            i: 0,
            depth: 0,
            stops: Stops::NONE,
        }
    }

    pub fn mark(&self) -> Mark {
        Mark {
            at: self.i,
            depth: self.depth,
        }
    }

    pub fn rewind(&mut self, m: Mark) {
        self.i = m.at;
        self.depth = m.depth;
    }

    // The error constructors take the position by value and the `Reader` ones are
    // inlined: a reader that `skip` copies into locals then stays in registers.
    #[cold]
    fn error_at(kind: ErrorKind, message: Cow<'static, str>, at: usize) -> Error {
        Error(Box::new(Failure { kind, message, at }))
    }

    #[cold]
    pub fn shape_error(&self, message: impl Into<Cow<'static, str>>) -> Error {
        Self::error_at(ErrorKind::Shape, message.into(), self.i)
    }

    #[inline(always)]
    fn syntax(&self, message: &'static str) -> Error {
        syntax_at(message, self.i)
    }

    /// The next byte after whitespace, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        // Compact JSON, as Kubernetes sends, has no whitespace: test for it cheaply
        // and look for more out of line.
        if c > b' ' {
            return Some(c);
        }
        self.i = after_space(self.b, self.i);
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8, what: &'static str) -> Result<()> {
        if self.peek() != Some(c) {
            return Err(self.syntax(what));
        }
        self.i += 1;
        Ok(())
    }

    /// Only whitespace may follow the value just read.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.syntax("trailing characters after the JSON value")),
        }
    }

    /// Steps into an object or array (the cursor is on its bracket); says whether it is
    /// empty, in which case it is stepped over whole.
    fn enter(&mut self, close: u8) -> Result<bool> {
        if self.depth == MAX_DEPTH {
            return Err(Self::error_at(
                ErrorKind::TooDeep,
                format!("nests deeper than {MAX_DEPTH} levels").into(),
                self.i,
            ));
        }
        self.i += 1;
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(true);
        }
        self.depth += 1;
        Ok(false)
    }

    /// After a member or element: `,` (true, cursor after it) or `close` (false, cursor
    /// after it, container left).
    fn next_or_close(&mut self, close: u8) -> Result<bool> {
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ if close == b'}' => Err(self.syntax("expected ',' or '}'")),
            _ => Err(self.syntax("expected ',' or ']'")),
        }
    }

    /// Consumes `null` if it comes next.
    pub fn null(&mut self) -> Result<bool> {
        if self.peek() != Some(b'n') {
            return Ok(false);
        }
        self.literal(b"null")?;
        Ok(true)
    }

    fn literal(&mut self, lit: &'static [u8]) -> Result<()> {
        if !self.b[self.i..].starts_with(lit) {
            return Err(self.syntax("invalid literal"));
        }
        self.i += lit.len();
        Ok(())
    }

    /// An object, handing each member's key to `member`, which must read or skip the
    /// value. Keys come as bytes, escapes decoded: they are only compared with the names
    /// of known fields, so checking them for UTF-8 first would buy nothing.
    pub fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, [u8]>) -> Result<()>,
    ) -> Result<()> {
        if self.peek() != Some(b'{') {
            return Err(self.unexpected("an object"));
        }
        if self.enter(b'}')? {
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected a key"));
            }
            let key = self.raw_string()?;
            self.eat(b':', "expected ':'")?;
            member(self, key)?;
            if !self.next_or_close(b'}')? {
                return Ok(());
            }
        }
    }

    /// An array, calling `element` for each element, which must read or skip it.
    pub fn array(&mut self, mut element: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        if self.peek() != Some(b'[') {
            return Err(self.unexpected("an array"));
        }
        if self.enter(b']')? {
            return Ok(());
        }
        loop {
            element(self)?;
            if !self.next_or_close(b']')? {
                return Ok(());
            }
        }
    }

    /// A type error for the value that comes next, or a syntax error if none does.
    #[cold]
    fn unexpected(&mut self, expected: &'static str) -> Error {
        let found = match self.peek() {
            Some(b'{') => "an object",
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            Some(b'-' | b'0'..=b'9') => "a number",
            _ => return self.syntax("expected a value"),
        };
        self.shape_error(format!("expected {expected}, found {found}"))
    }

    /// A string, unescaped; borrowed from the body when it has no escapes.
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("a string"));
        }
        let start = self.i + 1;
        match self.raw_string()? {
            Cow::Borrowed(raw) => match std::str::from_utf8(raw) {
                Ok(text) => Ok(Cow::Borrowed(text)),
                Err(_) => Err(self.not_utf8(start)),
            },
            // Already checked by `unescape`; checking again costs only escaped strings.
            Cow::Owned(text) => match String::from_utf8(text) {
                Ok(text) => Ok(Cow::Owned(text)),
                Err(_) => Err(self.not_utf8(start)),
            },
        }
    }

    /// The string at the cursor (on its opening quote): its bytes, borrowed from the body
    /// when it has no escapes (not checked for UTF-8), else decoded (checked).
    #[inline(always)]
    fn raw_string(&mut self) -> Result<Cow<'a, [u8]>> {
        let start = self.i + 1;
        let (end, escaped) = self.string_end(start)?;
        let text = if escaped {
            Cow::Owned(self.unescape(start, end)?.into_bytes())
        } else {
            Cow::Borrowed(&self.b[start..end])
        };
        self.i = end + 1;
        Ok(text)
    }

    #[cold]
    fn not_utf8(&self, at: usize) -> Error {
        Self::error_at(ErrorKind::Shape, "string is not valid UTF-8".into(), at)
    }

    /// A boolean.
    pub fn bool(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|_| true),
            Some(b'f') => self.literal(b"false").map(|_| false),
            _ => Err(self.unexpected("a boolean")),
        }
    }

    /// Finds the closing quote of the string whose text starts at `start`, checking
    /// escapes and control characters (not UTF-8); also says whether it had escapes.
    #[inline(always)]
    fn string_end(&mut self, start: usize) -> Result<(usize, bool)> {
        let at = self.stops.next(self.b, start);
        if self.b.get(at) == Some(&b'"') {
            return Ok((at, false));
        }
        escaped_string_end(self.b, at).map(|end| (end, true))
    }

    /// Skips the string at the cursor (on its opening quote).
    #[inline(always)]
    fn skip_string(&mut self) -> Result<()> {
        let (end, _) = self.string_end(self.i + 1)?;
        self.i = end + 1;
        Ok(())
    }

    /// The text of an escaped string between `start` and its closing quote at `end`
    /// (already checked for syntax), escapes decoded. Lone surrogates and bytes that are
    /// not UTF-8 are refused: this is a string that is read.
    fn unescape(&mut self, start: usize, end: usize) -> Result<String> {
        let mut out = Vec::with_capacity(end - start);
        let mut at = start;
        while at < end {
            let Some(off) = memchr::memchr(b'\\', &self.b[at..end]) else {
                out.extend_from_slice(&self.b[at..end]);
                break;
            };
            out.extend_from_slice(&self.b[at..at + off]);
            at += off + 1;
            let c = self.b[at];
            at += 1;
            let decoded = match c {
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let hi = hex4(self.b, at)?;
                    at += 4;
                    let code = match hi {
                        0xd800..=0xdbff => {
                            self.i = at;
                            let lo = if self.b[at..end].starts_with(b"\\u") {
                                self.i += 2;
                                hex4(self.b, self.i)?
                            } else {
                                0
                            };
                            if !(0xdc00..=0xdfff).contains(&lo) {
                                return Err(self.shape_error("lone surrogate in a string"));
                            }
                            at += 6;
                            0x10000 + ((u32::from(hi) - 0xd800) << 10) + (u32::from(lo) - 0xdc00)
                        }
                        0xdc00..=0xdfff => {
                            self.i = at;
                            return Err(self.shape_error("lone surrogate in a string"));
                        }
                        _ => u32::from(hi),
                    };
                    char::from_u32(code).expect("surrogates handled above")
                }
                other => other as char, // '"', '\\', '/'
            };
            let mut utf8 = [0; 4];
            out.extend_from_slice(decoded.encode_utf8(&mut utf8).as_bytes());
        }
        String::from_utf8(out).map_err(|_| self.not_utf8(start))
    }

    /// Skips one value of any type, checking its syntax and depth.
    pub fn skip(&mut self) -> Result<()> {
        // On a copy, which the compiler keeps in registers (`self` it must keep in memory).
        let mut r = Reader { ..*self };
        let skipped = r.skip_here();
        self.i = r.i;
        self.stops = r.stops;
        skipped
    }

    /// [`Self::skip`], iterative: `objects` holds one bit per open container (set for an
    /// object), at most [`MAX_DEPTH`].
    #[inline(always)]
    fn skip_here(&mut self) -> Result<()> {
        let base = self.depth;
        let mut objects: u128 = 0;
        loop {
            // A value.
            match self.peek() {
                Some(b'"') => self.skip_string()?,
                Some(b'{') => {
                    if !self.enter(b'}')? {
                        objects = objects << 1 | 1;
                        self.key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    if !self.enter(b']')? {
                        objects <<= 1;
                        continue;
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.syntax("expected a value")),
            }
            // What follows it, closing containers until the next value is due.
            loop {
                if self.depth == base {
                    return Ok(());
                }
                let in_object = objects & 1 == 1;
                if self.next_or_close(if in_object { b'}' } else { b']' })? {
                    if in_object {
                        self.key()?;
                    }
                    break;
                }
                objects >>= 1;
            }
        }
    }

    /// A member's key and its colon, skipped.
    #[inline(always)]
    fn key(&mut self) -> Result<()> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("expected a key"));
        }
        let at = self.stops.next(self.b, self.i + 1);
        // Compact JSON: the closing quote, then the colon.
        if self.b.get(at..at + 2) == Some(b"\":") {
            self.i = at + 2;
            return Ok(());
        }
        self.i = escaped_string_end(self.b, at)? + 1;
        self.eat(b':', "expected ':'")
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<()> {
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax("invalid number")),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Result<()> {
        let start = self.i;
        self.digits();
        if self.i == start {
            return Err(self.syntax("invalid number"));
        }
        Ok(())
    }
}

/// The fields of one object read so far, to refuse a repeated one (a second reader of
/// the body could take the other copy).
/// Sized for the largest reader (the request's ten fields); no allocation.
#[derive(Default)]
pub struct Seen {
    names: [&'static str; 12],
    len: usize,
}

impl Seen {
    /// Reads field `name` with `read` (`null` is what `read` makes of it), refusing it
    /// the second time.
    pub fn value<'a, T>(
        &mut self,
        r: &mut Reader<'a>,
        name: &'static str,
        read: impl FnOnce(&mut Reader<'a>) -> Result<T>,
    ) -> Result<T> {
        if self.has(name) {
            return Err(r.shape_error(format!("duplicate field `{name}`")));
        }
        self.names[self.len] = name;
        self.len += 1;
        read(r)
    }

    /// Reads field `name`, `null` or a value `read` reads.
    pub fn field<'a, T>(
        &mut self,
        r: &mut Reader<'a>,
        name: &'static str,
        read: impl FnOnce(&mut Reader<'a>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.value(r, name, |r| {
            if r.null()? {
                Ok(None)
            } else {
                read(r).map(Some)
            }
        })
    }

    /// Reads field `name`, `null` or an array of what `read` reads.
    pub fn list<'a, T>(
        &mut self,
        r: &mut Reader<'a>,
        name: &'static str,
        mut read: impl FnMut(&mut Reader<'a>) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        self.field(r, name, |r| {
            let mut out = Vec::new();
            r.array(|r| {
                out.push(read(r)?);
                Ok(())
            })?;
            Ok(out)
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.names[..self.len].contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn skip_all(text: &[u8]) -> Result<()> {
        let mut r = Reader::new(text);
        r.skip()?;
        r.end()
    }

    #[test]
    fn valid_json_is_skipped() {
        for ok in [
            "0",
            "-0.5e+10",
            "1E3",
            "true",
            " null ",
            r#""a\"b\\c\/\b\f\n\r\t\u00e9\ud83d\ude00""#,
            r#"{"a":[1,{"b":null}],"c":{}}"#,
            "[]",
            "[ ]",
            "{ }",
            r#"{"k\u0000":"\u0000"}"#,
            r#"{ "a" : 1 , "b\"c" :[ "x" ], "a key longer than sixteen bytes" :{}}"#,
        ] {
            assert_eq!(skip_all(ok.as_bytes()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn invalid_json_is_refused() {
        for bad in [
            "",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "NaN",
            r#""abc"#,
            "\"a\nb\"",
            "\"a\u{1}b\"",
            r#""\x""#,
            r#""\u12G4""#,
            r#""\u12""#,
            "[1,]",
            "[1 2]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":1"#,
            "[",
            "{} {}",
            "\u{feff}{}",
            "'a'",
        ] {
            let err = skip_all(bad.as_bytes()).expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::Syntax, "{bad}: {err}");
        }
    }

    #[test]
    fn string_errors_say_where() {
        for (bad, at) in [
            ("{\"a\nb\":1}", 3),
            (r#"{"a\x":1}"#, 4),
            (r#"["a", "\u12G4"]"#, 9),
            (r#"{"abc"#, 5),
            (r#"{"abc" 1}"#, 7),
        ] {
            let err = skip_all(bad.as_bytes()).expect_err(bad);
            assert_eq!(
                (err.kind(), err.0.at),
                (ErrorKind::Syntax, at),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn depth_is_limited_in_skipped_values() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert_eq!(skip_all(ok.as_bytes()), Ok(()));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(
            skip_all(deep.as_bytes()).unwrap_err().kind(),
            ErrorKind::TooDeep
        );
        let deep_objects = r#"{"a":"#.repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert_eq!(
            skip_all(deep_objects.as_bytes()).unwrap_err().kind(),
            ErrorKind::TooDeep
        );
    }

    #[test]
    fn read_strings_are_unescaped_and_checked() {
        let read = |t: &str| {
            let mut r = Reader::new(t.as_bytes());
            r.string().map(|s| s.into_owned())
        };
        assert_eq!(read(r#""plain""#).unwrap(), "plain");
        assert_eq!(read(r#""im\u0061ge""#).unwrap(), "image");
        assert_eq!(read(r#""\ud83d\ude00 \"q\"""#).unwrap(), "\u{1f600} \"q\"");
        assert_eq!(read(r#""a\/b\tc""#).unwrap(), "a/b\tc");
        for lone in [r#""\ud800""#, r#""\udc00x""#, r#""\ud800\u0041""#] {
            assert_eq!(read(lone).unwrap_err().kind(), ErrorKind::Shape, "{lone}");
        }
        let mut bad = b"\"ab\"".to_vec();
        bad[1] = 0xff;
        let mut r = Reader::new(&bad);
        assert_eq!(r.string().unwrap_err().kind(), ErrorKind::Shape);
        // The same bytes are fine where the string is skipped.
        assert_eq!(skip_all(&bad), Ok(()));
        assert!(matches!(read("1"), Err(e) if e.kind() == ErrorKind::Shape));
    }

    #[test]
    fn repeated_fields_are_refused() {
        let mut r = Reader::new(br#"{"a":1,"\u0061":2}"#);
        let mut seen = Seen::default();
        let err = r
            .object(|r, key| {
                assert_eq!(&*key, b"a");
                seen.field(r, "a", Reader::skip).map(drop)
            })
            .unwrap_err();
        assert_eq!(err.message(), "duplicate field `a`");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A container: maybe a name, maybe an image, and other fields of any JSON.
    fn container() -> impl Strategy<Value = Value> {
        let extra = prop::collection::btree_map("[a-zA-Z]{1,10}", json_value(), 0..4);
        let text = prop_oneof![any::<String>(), "[a-z./:@0-9-]{0,30}"];
        (
            prop::option::of(text.clone()),
            prop::option::of(text),
            extra,
        )
            .prop_map(|(name, image, extra)| {
                let mut m: serde_json::Map<String, Value> = extra
                    .into_iter()
                    .filter(|(k, _)| k != "name" && k != "image")
                    .collect();
                if let Some(n) = name {
                    m.insert("name".into(), n.into());
                }
                if let Some(i) = image {
                    m.insert("image".into(), i.into());
                }
                Value::Object(m)
            })
    }

    /// A pod with container lists among other fields of any JSON.
    fn pod() -> impl Strategy<Value = Value> {
        let list = || prop::option::of(prop::collection::vec(container(), 0..4));
        let extra = || prop::collection::btree_map("[a-zA-Z]{1,10}", json_value(), 0..4);
        (list(), list(), list(), extra(), extra()).prop_map(
            |(containers, init, ephemeral, spec_extra, top_extra)| {
                let mut spec: serde_json::Map<String, Value> = spec_extra.into_iter().collect();
                for (key, list) in [
                    ("containers", containers),
                    ("initContainers", init),
                    ("ephemeralContainers", ephemeral),
                ] {
                    spec.remove(key);
                    if let Some(list) = list {
                        spec.insert(key.into(), Value::Array(list));
                    }
                }
                let mut top: serde_json::Map<String, Value> = top_extra.into_iter().collect();
                top.insert("spec".into(), Value::Object(spec));
                top.remove("metadata");
                top.remove("template");
                Value::Object(top)
            },
        )
    }

    /// The images of a pod found by walking a `serde_json::Value`.
    fn images_by_value(pod: &Value) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (key, location) in [
            ("containers", "container"),
            ("initContainers", "init container"),
            ("ephemeralContainers", "ephemeral container"),
        ] {
            for c in pod["spec"][key].as_array().into_iter().flatten() {
                let text = |f: &str| c[f].as_str().unwrap_or_default().to_string();
                out.push((location.to_string(), text("name"), text("image")));
            }
        }
        out
    }

    proptest! {
        /// The word-wise search for the end of plain string text agrees with a plain
        /// byte-by-byte search.
        #[test]
        fn string_stops_agree(bytes in prop::collection::vec(prop_oneof![
            Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff
        ], 0..64), at in 0usize..64) {
            let at = at.min(bytes.len());
            let plain = bytes[at..]
                .iter()
                .position(|&c| matches!(c, b'"' | b'\\' | 0..=0x1f))
                .map_or(bytes.len(), |p| at + p);
            prop_assert_eq!(bytes.len() - string_stop(&bytes[at..]).len(), plain);
        }

        /// The windows find the same ends as the scan, reused or replaced as the
        /// positions asked for move forward, back and near the end.
        #[test]
        fn windows_agree_with_the_scan(bytes in prop::collection::vec(prop_oneof![
            8 => 0x20u8..=0xff, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20
        ], 0..300), starts in prop::collection::vec(0usize..300, 1..20)) {
            let mut stops = Stops::NONE;
            for at in starts {
                let at = at.min(bytes.len());
                prop_assert_eq!(stops.next(&bytes, at), bytes.len() - string_stop(&bytes[at..]).len());
            }
        }

        /// Both forms of `stop_bits` mark the same bytes (on x86-64 this checks the
        /// form other targets use).
        #[test]
        fn stop_bits_forms_agree(bytes in prop::collection::vec(prop_oneof![
            4 => any::<u8>(), 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0x1eu8..=0x21
        ], 64)) {
            let chunk: &[u8; 64] = bytes.as_slice().try_into().expect("64 bytes");
            prop_assert_eq!(stop_bits(chunk), plain_stop_bits(chunk));
        }

        /// Whatever serde_json writes is skipped whole, compact or pretty.
        #[test]
        fn skips_what_serde_json_writes(v in json_value()) {
            let compact = serde_json::to_vec(&v).unwrap();
            prop_assert_eq!(skip_all(&compact), Ok(()));
            let pretty = serde_json::to_vec_pretty(&v).unwrap();
            prop_assert_eq!(skip_all(&pretty), Ok(()));
        }

        /// On any bytes it agrees with serde_json on whether they are JSON, up to the
        /// two documented differences (depth, UTF-8 in skipped strings: valid UTF-8
        /// inputs only here; serde_json's own depth limit is also 128).
        #[test]
        fn accepts_exactly_what_serde_json_accepts(text in "[ \\[\\]{}\":,0-9a-z\\\\.eE+-]{0,40}") {
            // Also with 64 spaces after it, so that every string is found in a window.
            for text in [text.clone(), format!("{text}{:64}", "")] {
                let ours = skip_all(text.as_bytes()).is_ok();
                let theirs = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
                prop_assert_eq!(ours, theirs, "{}", text);
            }
        }

        /// The reader finds the images a `serde_json::Value` walk finds, whatever other
        /// fields surround them.
        #[test]
        fn reads_the_images_a_value_walk_finds(pod in pod()) {
            use crate::admission::object::{Kind, Object};
            let text = serde_json::to_string(&pod).unwrap();
            let object = Object::parse(&text).unwrap();
            let read: Vec<(String, String, String)> = object
                .images(Kind::Pod)
                .iter()
                .map(|u| (u.location.to_string(), u.name.to_string(), u.image.to_string()))
                .collect();
            prop_assert_eq!(read, images_by_value(&pod));
        }

        /// Read strings decode to what serde_json decodes.
        #[test]
        fn strings_decode_like_serde_json(s in any::<String>()) {
            let text = serde_json::to_string(&s).unwrap();
            let mut r = Reader::new(text.as_bytes());
            prop_assert_eq!(r.string().unwrap(), s.as_str());
            let ascii = serde_json::to_string(&s)
                .unwrap()
                .chars()
                .map(|c| if c.is_ascii() { c.to_string() } else {
                    let mut buf = [0u16; 2];
                    c.encode_utf16(&mut buf).iter().map(|u| format!("\\u{u:04x}")).collect()
                })
                .collect::<String>();
            let mut r = Reader::new(ascii.as_bytes());
            prop_assert_eq!(r.string().unwrap(), s.as_str());
        }
    }
}
