//! Appending JSON to a byte buffer by hand: [`JsonOut`] and the 16-byte array items ([`Slot`]) it copies
//! in one load and store.
//!
//! The API's hot path (`render`) writes through these instead of serde: see that module for why.

/// A JSON array item ready to append: `,` and up to 14 more bytes in `bytes[..len]`, with the
/// length in the last byte. Aligned, so one 16-byte load and store copy it; the caller truncates.
///
/// The bytes are open to the crate only so that `render` can zero-fill arrays of slots.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
pub(crate) struct Slot(pub(crate) [u8; 16]);

/// The length byte of a slot whose item did not fit (see [`Slot::long`]).
const LONG: u8 = u8::MAX;

impl Slot {
    /// `,` followed by `text`, if it fits.
    pub(crate) fn item(text: &[u8]) -> Option<Slot> {
        let mut bytes = [0u8; 16];
        if text.len() > 14 {
            return None;
        }
        bytes[0] = b',';
        bytes[1..=text.len()].copy_from_slice(text);
        bytes[15] = (text.len() + 1) as u8;
        Some(Slot(bytes))
    }

    /// A slot for an item stored elsewhere, under `index`.
    pub(crate) const fn long(index: u32) -> Slot {
        let index = index.to_le_bytes();
        Slot([index[0], index[1], index[2], index[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, LONG])
    }

    /// Whether the item is stored elsewhere (see [`Slot::long`]).
    pub(crate) fn is_long(&self) -> bool {
        self.0[15] == LONG
    }

    /// The index a long slot points to.
    pub(crate) fn long_index(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

/// Appends JSON to a byte buffer.
pub(crate) struct JsonOut {
    /// The JSON written so far.
    pub(crate) buf: Vec<u8>,
}

impl JsonOut {
    /// An empty buffer with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { buf: Vec::with_capacity(capacity) }
    }

    /// Appends `text` as it is: literal JSON.
    pub(crate) fn raw(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// Appends a short slot's item: one fixed 16-byte copy and a truncate, where a variable-length
    /// copy is a `memcpy` call.
    pub(crate) fn slot(&mut self, slot: &Slot) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&slot.0);
        self.buf.truncate(start + usize::from(slot.0[15]).min(15));
    }

    /// Starts an array whose items are appended with a leading `,` each; returns the position for
    /// [`JsonOut::end_items`].
    pub(crate) fn begin_items(&self) -> usize {
        self.buf.len()
    }

    /// Ends such an array: the first item's `,` becomes the `[`.
    pub(crate) fn end_items(&mut self, start: usize) {
        if self.buf.len() == start {
            self.buf.push(b'[');
        } else {
            self.buf[start] = b'[';
        }
        self.buf.push(b']');
    }

    /// Appends an integer.
    pub(crate) fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// Shortest round-trip form; `null` for non-finite values, as serde_json does.
    pub(crate) fn f32(&mut self, value: f32) {
        if value.is_finite() {
            self.buf.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
        } else {
            self.raw("null");
        }
    }

    /// Fixed point with at most `decimals` (≤ 9) digits after the point, trailing zeros dropped.
    pub(crate) fn f32_fixed(&mut self, value: f32, decimals: u32) {
        const POWERS: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
        let decimals = decimals.min(9);
        let scaled = f64::from(value) * POWERS[decimals as usize];
        if scaled.is_nan() || scaled.abs() >= 1e15 {
            return self.f32(value);
        }
        // Round half away from zero by truncation: `f64::round` is a libm call, this is one instruction.
        let scaled = (scaled + 0.5f64.copysign(scaled)) as i64;
        let mut magnitude = scaled.unsigned_abs();
        let mut n_decimals = decimals;
        while n_decimals > 0 && magnitude % 10 == 0 {
            magnitude /= 10;
            n_decimals -= 1;
        }
        // Digits right to left; dividing by the constant 10 compiles to a multiply, unlike a variable 10^d.
        let mut digits = [0u8; 24];
        let mut pos = digits.len();
        let mut n_written = 0;
        while magnitude > 0 || n_written <= n_decimals {
            if n_written == n_decimals && n_decimals > 0 {
                pos -= 1;
                digits[pos] = b'.';
            }
            pos -= 1;
            digits[pos] = b'0' + (magnitude % 10) as u8;
            magnitude /= 10;
            n_written += 1;
        }
        if scaled < 0 {
            pos -= 1;
            digits[pos] = b'-';
        }
        self.buf.extend_from_slice(&digits[pos..]);
    }

    /// Appends `value` as a JSON string.
    pub(crate) fn string(&mut self, value: &str) {
        // serde_json's escaping, so hand-written and derived output agree byte for byte.
        let escaped = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned());
        self.raw(&escaped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(value: f32, decimals: u32) -> String {
        let mut out = JsonOut::with_capacity(16);
        out.f32_fixed(value, decimals);
        String::from_utf8(out.buf).expect("utf8")
    }

    #[test]
    fn fixed_point_is_valid_short_json() {
        assert_eq!(fixed(0.0, 3), "0");
        assert_eq!(fixed(-0.0001, 3), "0");
        assert_eq!(fixed(1.5, 3), "1.5");
        assert_eq!(fixed(-0.17, 3), "-0.17");
        assert_eq!(fixed(0.0625, 3), "0.063");
        assert_eq!(fixed(0.0049, 3), "0.005");
        assert_eq!(fixed(0.0012, 4), "0.0012");
        assert_eq!(fixed(123456.78, 1), "123456.8");
        assert_eq!(fixed(f32::NAN, 2), "null");
        for value in [0.1234f32, -5.5, 1e-3, 77.77] {
            let text = fixed(value, 4);
            let parsed: f64 = serde_json::from_str(&text).expect("valid JSON number");
            assert!((parsed - f64::from(value)).abs() <= 0.5e-4 + 1e-9, "{value} -> {text}");
        }
    }

    #[test]
    fn fixed_point_matches_std_formatting() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = ((state >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0) as f32 / (1 + i % 1000) as f32;
            let decimals = (i % 10) as usize;
            let expected = format!("{:.*}", decimals, f64::from(value));
            let expected =
                if expected.contains('.') { expected.trim_end_matches('0').trim_end_matches('.') } else { &expected };
            let expected = if expected == "-0" { "0" } else { expected };
            let ours = fixed(value, decimals as u32);
            // std rounds half to even on the exact binary value; we round half away from zero: ties may differ by one ulp of the last digit.
            let (a, b): (f64, f64) = (ours.parse().expect("number"), expected.parse().expect("number"));
            assert!((a - b).abs() <= 1.01 * 10f64.powi(-(decimals as i32)), "{value} {decimals}: {ours} vs {expected}");
            if ours != expected {
                assert!((a - b).abs() > 0.0, "same value printed differently: {ours} vs {expected}");
            }
        }
    }

    #[test]
    fn empty_arrays_render() {
        let mut out = JsonOut::with_capacity(16);
        let start = out.begin_items();
        out.end_items(start);
        assert_eq!(out.buf, b"[]");
    }
}
