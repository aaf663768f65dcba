//! PEM blocks, found in text that may have other text around them.

use crate::Error;

/// One PEM block: its label and the DER it holds.
pub struct Block {
    /// The label after `BEGIN`, such as `CERTIFICATE`.
    pub label: String,
    /// The decoded contents.
    pub der: Vec<u8>,
}

/// Whether `input` holds a PEM `-----BEGIN` line.
pub fn looks_like_pem(input: &[u8]) -> bool {
    input.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Every PEM block in `input`, in order, ignoring text around them.
///
/// # Errors
/// [`Error::Invalid`] when a block is malformed (bad base64, no END line) or is a legacy
/// OpenSSL-encrypted key, which must be converted to PKCS#8 first.
pub fn find_blocks(input: &[u8]) -> Result<Vec<Block>, Error> {
    if !looks_like_pem(input) {
        return Ok(Vec::new());
    }
    let blocks =
        ::pem::parse_many(input).map_err(|e| Error::Invalid(format!("malformed PEM: {e}")))?;
    // The parser skips a last block that has no END line; a file cut short must not pass for a
    // shorter one.
    let begins = input.windows(11).filter(|w| w == b"-----BEGIN ").count();
    if blocks.len() < begins {
        return Err(Error::Invalid(
            "malformed PEM: a BEGIN line without a matching END line".into(),
        ));
    }
    blocks
        .into_iter()
        .map(|b| {
            if b.headers().get("Proc-Type").is_some() {
                return Err(Error::Invalid(format!(
                    "the {} block is encrypted in OpenSSL's legacy format; convert it with \
                     `openssl pkcs8 -topk8` first",
                    b.tag()
                )));
            }
            Ok(Block {
                label: b.tag().to_owned(),
                der: b.into_contents(),
            })
        })
        .collect()
}

/// Encodes DER as one PEM block with 64-character lines and `\n` line ends.
pub fn encode(label: &str, der: &[u8]) -> String {
    ::pem::encode_config(
        &::pem::Pem::new(label, der),
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_among_other_text() {
        let text = format!(
            "subject=CN=x\nissuer=CN=y\n{}some words\n{}",
            encode("CERTIFICATE", &[1, 2, 3]),
            encode("PRIVATE KEY", &[4, 5])
        );
        let blocks = find_blocks(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(blocks[0].der, [1, 2, 3]);
        assert_eq!(blocks[1].label, "PRIVATE KEY");
    }

    #[test]
    fn truncated_and_legacy_encrypted_blocks_are_refused() {
        let truncated = "-----BEGIN CERTIFICATE-----\nAQID\n";
        let err = find_blocks(truncated.as_bytes()).err().unwrap();
        assert!(err.to_string().contains("END"), "{err}");
        let cut_chain = format!("{}{truncated}", encode("CERTIFICATE", &[1, 2, 3]));
        let err = find_blocks(cut_chain.as_bytes()).err().unwrap();
        assert!(err.to_string().contains("END"), "{err}");
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAQID\n-----END RSA PRIVATE KEY-----\n";
        let err = find_blocks(legacy.as_bytes()).err().unwrap();
        assert!(err.to_string().contains("pkcs8 -topk8"), "{err}");
    }
}
