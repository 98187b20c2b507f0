//! CMS (PKCS#7) envelopes around recording media.

/// True if `head` (the first bytes of a file) starts a CMS ContentInfo whose content type is
/// EnvelopedData (OID 1.2.840.113549.1.7.3), in DER or BER.
pub fn looks_enveloped(head: &[u8]) -> bool {
    const OID: [u8; 11] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
    if head.first() != Some(&0x30) {
        return false;
    }
    let window = &head[..head.len().min(16)];
    window.windows(OID.len()).any(|w| w == OID)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sniff() {
        let der = [0x30, 0x82, 0x01, 0x00, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03, 0xA0];
        let ber = [0x30, 0x80, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03, 0xA0, 0x80];
        assert!(super::looks_enveloped(&der));
        assert!(super::looks_enveloped(&ber));
        assert!(!super::looks_enveloped(b"ID3\x04\x00"));
        assert!(!super::looks_enveloped(&[]));
    }
}
