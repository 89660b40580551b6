//! Bytes as lower-case hex digits, the form ids and digests take.

/// `bytes` as two lower-case hex digits each.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes `text` spells in lower-case hex; None for anything else (an
/// odd length, another character, upper case), so that `encode` gives the
/// very text back.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let lower = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !lower || text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_hex_round_trips_and_nothing_else_decodes() {
        assert_eq!(encode(&[0, 0xab, 0x7f]), "00ab7f");
        assert_eq!(decode("00ab7f"), Some(vec![0, 0xab, 0x7f]));
        assert_eq!(decode(""), Some(vec![]));
        for bad in ["0", "00AB", "0g", "+1"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
