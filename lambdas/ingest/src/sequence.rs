//! Kinesis sequence numbers: decimal strings of up to 128 digits. They do not fit any
//! integer type, so they are validated once and compared as numbers written in decimal.

use std::cmp::Ordering;
use std::fmt;

const MAX_DIGITS: usize = 128;

/// A validated Kinesis sequence number, without leading zeros.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SequenceNumber(String);

impl SequenceNumber {
    pub fn parse(text: &str) -> Result<SequenceNumber, String> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("sequence number {text:?} is not a decimal number"));
        }
        if text.len() > MAX_DIGITS {
            return Err(format!(
                "sequence number has {} digits, more than {MAX_DIGITS}",
                text.len()
            ));
        }
        let trimmed = text.trim_start_matches('0');
        Ok(SequenceNumber(if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for SequenceNumber {
    /// Without leading zeros, the longer number is the greater; equal lengths compare
    /// digit by digit, which is byte order.
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    #[test]
    fn compares_as_numbers_not_strings() {
        assert!(seq("9") < seq("10"));
        assert!(seq("0010") == seq("10"));
        assert!(seq("49590338271490256608559692538361571095921575989136588898") > seq("4959"));
        assert_eq!(seq("000").as_str(), "0");
    }

    #[test]
    fn rejects_what_is_not_a_sequence_number() {
        for bad in ["", "-1", "1e5", " 1", "12a", &"9".repeat(129)] {
            assert!(SequenceNumber::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SequenceNumber::parse(&"9".repeat(128)).is_ok());
    }

    proptest! {
        #[test]
        fn order_matches_u128(a: u128, b: u128, pad in 0usize..4) {
            let padded = format!("{}{a}", "0".repeat(pad));
            prop_assert_eq!(seq(&padded).cmp(&seq(&b.to_string())), a.cmp(&b));
        }
    }
}
