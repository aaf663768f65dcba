//! Object identifiers from text and from parsed DER. const-oid's text parser multiplies each
//! arc unchecked, so an arc past `u32` panics (debug) or wraps into another OID (release):
//! text is checked arc by arc first, and parsed OIDs go through its checked DER reader.

use const_oid::ObjectIdentifier;

/// The OID written in dotted text, if it is one whose every arc fits in 32 bits.
pub(crate) fn from_text(text: &str) -> Option<ObjectIdentifier> {
    if text.split('.').any(|arc| arc.parse::<u32>().is_err()) {
        return None;
    }
    ObjectIdentifier::new(text).ok()
}

/// The OID whose DER value (without tag and length) is `der`, if const-oid can hold it.
pub(crate) fn from_der_value(der: &[u8]) -> Option<ObjectIdentifier> {
    ObjectIdentifier::from_bytes(der).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `certificate` fuzz target: an EKU OID with an arc past 32 bits.
    #[test]
    fn arcs_past_32_bits_are_refused_not_overflowed() {
        assert_eq!(
            from_text("1.3.6.1.5.5.7.3.1").map(|o| o.to_string()),
            Some("1.3.6.1.5.5.7.3.1".to_owned())
        );
        for text in ["1.2.99999999999", "1.2.4294967296", "1.2.x", "1..2", ""] {
            assert!(from_text(text).is_none(), "{text}");
        }
        // 1.2.(2^35): base-128 digits 0x81 0x80 0x80 0x80 0x80 0x00.
        assert!(from_der_value(&[0x2a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00]).is_none());
        assert!(from_der_value(&[0x2b, 0x06, 0x01]).is_some());
    }
}
