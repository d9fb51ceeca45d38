//! Hex encoding of hashes, secrets and lock ids.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0x0f) as usize] as char);
    }
    out
}

fn nibble(digit: u8, allow_upper: bool) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' if allow_upper => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn decode32_with(text: &str, allow_upper: bool) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, pair) in digits.chunks(2).enumerate() {
        out[index] = nibble(pair[0], allow_upper)? << 4 | nibble(pair[1], allow_upper)?;
    }
    Some(out)
}

/// 32 bytes from 64 hex digits of either case (a hashlock or a secret as given by a caller).
pub fn decode32(text: &str) -> Option<[u8; 32]> {
    decode32_with(text, true)
}

/// 32 bytes from 64 lower-case hex digits (the canonical form of a lock id).
pub fn decode32_lower(text: &str) -> Option<[u8; 32]> {
    decode32_with(text, false)
}
