//! NEAR account id rules.

pub const MIN_ACCOUNT_ID_LEN: usize = 2;
pub const MAX_ACCOUNT_ID_LEN: usize = 64;

/// 2 to 64 characters; dot-separated parts of lower-case letters and digits, where single `-` or `_`
/// may separate two alphanumerics (`alice.near`, `a-b_c.test.near`, a 64-hex implicit account).
pub fn is_valid_account_id(account_id: &str) -> bool {
    let bytes = account_id.as_bytes();
    if bytes.len() < MIN_ACCOUNT_ID_LEN || bytes.len() > MAX_ACCOUNT_ID_LEN {
        return false;
    }
    // The previous character was a separator (`.`, `-`, `_`) or the start: the next must be alphanumeric.
    let mut after_separator = true;
    for &byte in bytes {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' => after_separator = false,
            b'.' | b'-' | b'_' => {
                if after_separator {
                    return false;
                }
                after_separator = true;
            }
            _ => return false,
        }
    }
    !after_separator
}
