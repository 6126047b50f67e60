//! Primitive encodings shared by every blob: LEB128 varints, little-endian floats and length-prefixed strings.
//!
//! The reader never trusts a length: every count is checked against the bytes
//! left, so a corrupt blob fails with [`CodecError::Truncated`] instead of
//! allocating gigabytes.

use super::CodecError;

/// Appends primitives to a byte buffer.
#[derive(Default)]
pub(crate) struct WireWriter {
    pub(crate) buf: Vec<u8>,
}

impl WireWriter {
    pub(crate) fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    pub(crate) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    pub(crate) fn len(&mut self, len: usize) {
        self.varint(len as u64);
    }

    pub(crate) fn f32(&mut self, value: f32) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn f64(&mut self, value: f64) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn str(&mut self, value: &str) {
        self.len(value.len());
        self.buf.extend_from_slice(value.as_bytes());
    }
}

/// Reads primitives from a byte slice, failing cleanly on truncated or malformed input.
pub(crate) struct WireReader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The blob's format version, for payloads that grew between versions.
    version: u8,
}

impl<'a> WireReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0, version: super::FORMAT_VERSION }
    }

    /// Reads a payload written in format `version`.
    pub(crate) fn with_version(self, version: u8) -> Self {
        Self { version, ..self }
    }

    /// The format version the payload was written in.
    pub(crate) fn version(&self) -> u8 {
        self.version
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn finish(self) -> Result<(), CodecError> {
        if self.remaining() == 0 { Ok(()) } else { Err(CodecError::TrailingBytes { n_bytes: self.remaining() }) }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        let byte = *self.buf.get(self.pos).ok_or(CodecError::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    pub(crate) fn varint(&mut self) -> Result<u64, CodecError> {
        // Fast path: most token ids and counts fit one or two bytes.
        match self.buf.get(self.pos..self.pos + 2) {
            Some(&[first, _]) if first < 0x80 => {
                self.pos += 1;
                return Ok(u64::from(first));
            }
            Some(&[first, second]) if second < 0x80 => {
                self.pos += 2;
                return Ok(u64::from(first & 0x7f) | (u64::from(second) << 7));
            }
            _ => {}
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(CodecError::Invalid("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError::Invalid("varint longer than 10 bytes"))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.varint()?).map_err(|_| CodecError::Invalid("value does not fit 32 bits"))
    }

    /// Reads `n` varints that must fit 32 bits into `out`: the token column's hot loop, with one
    /// bounds check per value and no `Result` per value.
    pub(crate) fn varints_u32(&mut self, n: usize, out: &mut Vec<u32>) -> Result<(), CodecError> {
        let bytes = &self.buf[self.pos..];
        let mut pos = 0;
        out.reserve(n);
        for _ in 0..n {
            let mut value = 0u32;
            let mut shift = 0;
            loop {
                let Some(&byte) = bytes.get(pos) else { return Err(CodecError::Truncated) };
                pos += 1;
                if shift == 28 && byte > 0x0f {
                    return Err(CodecError::Invalid("value does not fit 32 bits"));
                }
                value |= u32::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    break;
                }
                shift += 7;
            }
            out.push(value);
        }
        self.pos += pos;
        Ok(())
    }

    /// Reads a count of items that each take at least `min_item_bytes`, so it can be checked against the input.
    pub(crate) fn count(&mut self, min_item_bytes: usize) -> Result<usize, CodecError> {
        let count = self.varint()?;
        let max = (self.remaining() / min_item_bytes.max(1)) as u64;
        if count > max {
            return Err(CodecError::Truncated);
        }
        Ok(count as usize)
    }

    pub(crate) fn bytes(&mut self, n_bytes: usize) -> Result<&'a [u8], CodecError> {
        if n_bytes > self.remaining() {
            return Err(CodecError::Truncated);
        }
        let bytes = &self.buf[self.pos..self.pos + n_bytes];
        self.pos += n_bytes;
        Ok(bytes)
    }

    pub(crate) fn f32(&mut self) -> Result<f32, CodecError> {
        let bytes = self.bytes(4)?;
        Ok(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, CodecError> {
        let mut array = [0u8; 8];
        array.copy_from_slice(self.bytes(8)?);
        Ok(f64::from_le_bytes(array))
    }

    pub(crate) fn string(&mut self) -> Result<String, CodecError> {
        let len = self.count(1)?;
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::Invalid("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        let values = [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX];
        let mut writer = WireWriter::default();
        values.iter().for_each(|&v| writer.varint(v));
        let mut reader = WireReader::new(&writer.buf);
        for &value in &values {
            assert_eq!(reader.varint().expect("varint"), value);
        }
        reader.finish().expect("no trailing bytes");
    }

    #[test]
    fn malformed_varints_are_errors() {
        assert!(matches!(WireReader::new(&[0x80]).varint(), Err(CodecError::Truncated)));
        assert!(WireReader::new(&[0xff; 11]).varint().is_err());
        assert!(WireReader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).varint().is_err());
    }

    #[test]
    fn bulk_u32_varints_match_single_reads() {
        let mut values =
            vec![0u64, 1, 127, 128, 16_383, 16_384, 50_256, (1 << 21) - 1, 1 << 21, (1 << 28) - 1, 1 << 28];
        values.push(u64::from(u32::MAX));
        let mut state = 99u64;
        for _ in 0..5000 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            values.push((state >> 33) >> (state % 32));
        }
        let mut writer = WireWriter::default();
        values.iter().for_each(|&v| writer.varint(v));
        let mut out = Vec::new();
        let mut reader = WireReader::new(&writer.buf);
        reader.varints_u32(values.len(), &mut out).expect("bulk read");
        reader.finish().expect("all consumed");
        assert_eq!(out.iter().map(|&v| u64::from(v)).collect::<Vec<_>>(), values);
        let mut too_big = WireWriter::default();
        too_big.varint(u64::from(u32::MAX) + 1);
        assert!(WireReader::new(&too_big.buf).varints_u32(1, &mut Vec::new()).is_err());
        assert!(matches!(
            WireReader::new(&writer.buf[..4]).varints_u32(4, &mut Vec::new()),
            Err(CodecError::Truncated)
        ));
    }

    #[test]
    fn counts_are_bounded_by_the_input() {
        let mut writer = WireWriter::default();
        writer.varint(1 << 40);
        assert!(matches!(WireReader::new(&writer.buf).count(1), Err(CodecError::Truncated)));
    }
}
