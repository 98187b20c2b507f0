//! A small BER reader: enough of X.690 for CMS envelopes, in DER or BER with indefinite lengths.
//!
//! Two halves: [`Stream`] reads headers and small whole elements from a `Read` (the envelope's
//! prefix) and streams the (possibly constructed, chunked) encryptedContent without holding it;
//! [`Tlv`] parses small elements already in memory (recipient infos, algorithm identifiers).
//! Every length is checked against what is left, and nesting is bounded, so hostile input ends
//! in an error, never a panic, a huge allocation or a stack overflow.

use std::borrow::Cow;
use std::io::Read;

/// Nesting bound for constructed encodings (real envelopes nest about 8 deep).
const MAX_DEPTH: usize = 32;
/// Bound for one element read whole into memory (recipient infos, algorithm parameters).
pub(crate) const MAX_ELEMENT: usize = 4 << 20;

/// What went wrong, before the file name is known.
#[derive(Debug)]
pub(crate) enum Bad {
    Malformed(String),
    Truncated(String),
    Unsupported(&'static str, String),
    Io(std::io::Error),
    /// A failure of the consumer of streamed content (cipher, output), already named.
    Fail(Box<super::CryptoError>),
}

impl Bad {
    pub(crate) fn at(self, file: &std::path::Path) -> super::CryptoError {
        use super::CryptoError as E;
        let file = file.to_path_buf();
        match self {
            Bad::Malformed(reason) => E::Malformed { file, reason },
            Bad::Truncated(reason) => E::Truncated { file, reason },
            Bad::Unsupported(what, name) => E::Unsupported { file, what, name },
            Bad::Io(source) => E::Io { file, source },
            Bad::Fail(e) => *e,
        }
    }
}

pub(crate) fn malformed(s: impl Into<String>) -> Bad {
    Bad::Malformed(s.into())
}

/// An element header: tag byte, constructed bit, length (`None`: indefinite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub tag: u8,
    pub len: Option<usize>,
    pub hdr_len: usize,
}

impl Header {
    pub fn constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }
    pub fn is_eoc(&self) -> bool {
        self.tag == 0 && self.len == Some(0)
    }
}

/// The largest element length accepted (2^48 bytes).
pub(crate) const MAX_LENGTH: u64 = 1 << 48;

/// Parses a header from the start of `buf`. `Ok(None)`: `buf` is too short.
fn parse_header(buf: &[u8]) -> Result<Option<Header>, Bad> {
    let Some(&tag) = buf.first() else { return Ok(None) };
    if tag & 0x1F == 0x1F {
        return Err(malformed(format!("high tag number form (tag byte 0x{tag:02X}) is not used by CMS")));
    }
    let Some(&l0) = buf.get(1) else { return Ok(None) };
    if l0 < 0x80 {
        return Ok(Some(Header { tag, len: Some(l0 as usize), hdr_len: 2 }));
    }
    if l0 == 0x80 {
        if tag & 0x20 == 0 {
            return Err(malformed(format!("indefinite length on a primitive element (tag 0x{tag:02X})")));
        }
        return Ok(Some(Header { tag, len: None, hdr_len: 2 }));
    }
    let n = (l0 & 0x7F) as usize;
    if n > 8 {
        return Err(malformed(format!("length of {n} bytes")));
    }
    let Some(bytes) = buf.get(2..2 + n) else { return Ok(None) };
    let mut len: u64 = 0;
    for &b in bytes {
        len = (len << 8) | b as u64;
    }
    // No real envelope comes near 2^48 bytes (256 TiB); refusing more keeps every
    // position-plus-length sum below far from overflow, whatever the input says.
    if len > MAX_LENGTH {
        return Err(malformed(format!("length {len} is larger than any envelope")));
    }
    let len = usize::try_from(len).map_err(|_| malformed(format!("length {len} too large")))?;
    Ok(Some(Header { tag, len: Some(len), hdr_len: 2 + n }))
}

/// One element parsed from memory. For indefinite lengths, `content` stops before the
/// end-of-contents octets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Parses the element at the start of `buf`; returns it and the rest.
    pub fn parse(buf: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), Bad> {
        Self::parse_depth(buf, 0)
    }

    fn parse_depth(buf: &'a [u8], depth: usize) -> Result<(Tlv<'a>, &'a [u8]), Bad> {
        if depth > MAX_DEPTH {
            return Err(malformed("nesting too deep"));
        }
        let h = parse_header(buf)?.ok_or_else(|| Bad::Truncated("element header cut short".into()))?;
        let body = &buf[h.hdr_len..];
        match h.len {
            Some(len) => {
                if len > body.len() {
                    return Err(Bad::Truncated(format!(
                        "element (tag 0x{:02X}) of {len} bytes, only {} left",
                        h.tag,
                        body.len()
                    )));
                }
                let total = h.hdr_len.checked_add(len).ok_or_else(|| malformed("element length overflows"))?;
                Ok((Tlv { tag: h.tag, content: &body[..len], raw: &buf[..total] }, &buf[total..]))
            }
            None => {
                let mut rest = body;
                loop {
                    let (child, after) = Self::parse_depth(rest, depth + 1)?;
                    if child.tag == 0 && child.raw.len() == 2 {
                        let content_len = body.len() - rest.len();
                        let total = h.hdr_len + content_len + 2;
                        return Ok((Tlv { tag: h.tag, content: &body[..content_len], raw: &buf[..total] }, after));
                    }
                    rest = after;
                }
            }
        }
    }

    /// The children of a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, Bad> {
        if self.tag & 0x20 == 0 {
            return Err(malformed(format!("expected a constructed element, found tag 0x{:02X}", self.tag)));
        }
        let mut out = Vec::new();
        let mut rest = self.content;
        while !rest.is_empty() {
            let (t, after) = Tlv::parse(rest)?;
            out.push(t);
            rest = after;
        }
        Ok(out)
    }

    /// Checks the tag (universal tags in either form, since BER may construct strings).
    pub fn expect(self, tag: u8, what: &str) -> Result<Tlv<'a>, Bad> {
        if self.tag == tag || (tag == 0x04 && self.tag == 0x24) {
            Ok(self)
        } else {
            Err(malformed(format!("{what}: expected tag 0x{tag:02X}, found 0x{:02X}", self.tag)))
        }
    }

    /// The bytes of an OCTET STRING (or an implicitly tagged one), joining BER segments.
    pub fn octets(&self) -> Result<Cow<'a, [u8]>, Bad> {
        if self.tag & 0x20 == 0 {
            return Ok(Cow::Borrowed(self.content));
        }
        let mut out = Vec::new();
        self.join(&mut out, 0)?;
        Ok(Cow::Owned(out))
    }

    fn join(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), Bad> {
        if depth > MAX_DEPTH {
            return Err(malformed("nesting too deep"));
        }
        if self.tag & 0x20 == 0 {
            out.extend_from_slice(self.content);
            return Ok(());
        }
        for c in self.children()? {
            if c.tag & !0x20 != 0x04 {
                return Err(malformed(format!("segment of a constructed string has tag 0x{:02X}", c.tag)));
            }
            c.join(out, depth + 1)?;
        }
        Ok(())
    }
}

/// Reads an envelope from a byte stream, counting the position.
pub(crate) struct Stream<R> {
    r: R,
    pub pos: u64,
}

impl<R: Read> Stream<R> {
    pub fn new(r: R) -> Self {
        Stream { r, pos: 0 }
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), Bad> {
        match self.r.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(Bad::Truncated(format!("file ends inside {what} (at byte {})", self.pos)))
            }
            Err(e) => Err(Bad::Io(e)),
        }
    }

    /// Reads one header; `Ok(None)` at a clean end of the stream.
    pub fn header_or_end(&mut self, what: &str) -> Result<Option<(Header, Vec<u8>)>, Bad> {
        let mut buf = Vec::with_capacity(10);
        let mut one = [0u8; 1];
        loop {
            if let Some(h) = parse_header(&buf)? {
                return Ok(Some((h, buf)));
            }
            match self.r.read(&mut one) {
                Ok(0) if buf.is_empty() => return Ok(None),
                Ok(0) => return Err(Bad::Truncated(format!("file ends inside the header of {what}"))),
                Ok(_) => {
                    self.pos += 1;
                    buf.push(one[0]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Bad::Io(e)),
            }
        }
    }

    pub fn header(&mut self, what: &str) -> Result<Header, Bad> {
        match self.header_or_end(what)? {
            Some((h, _)) => Ok(h),
            None => Err(Bad::Truncated(format!("file ends before {what}"))),
        }
    }

    /// Reads one whole element (header included) into memory, up to [`MAX_ELEMENT`] bytes.
    pub fn element(&mut self, what: &str) -> Result<Vec<u8>, Bad> {
        let mut out = Vec::new();
        self.element_into(&mut out, what, 0)?;
        Ok(out)
    }

    fn element_into(&mut self, out: &mut Vec<u8>, what: &str, depth: usize) -> Result<Header, Bad> {
        let (h, raw) = self.header_or_end(what)?.ok_or_else(|| Bad::Truncated(format!("file ends before {what}")))?;
        out.extend_from_slice(&raw);
        self.body_into(h, out, what, depth)?;
        Ok(h)
    }

    fn body_into(&mut self, h: Header, out: &mut Vec<u8>, what: &str, depth: usize) -> Result<(), Bad> {
        if depth > MAX_DEPTH {
            return Err(malformed(format!("{what}: nesting too deep")));
        }
        match h.len {
            Some(len) => {
                if out.len().checked_add(len).is_none_or(|n| n > MAX_ELEMENT) {
                    return Err(malformed(format!("{what} is larger than {MAX_ELEMENT} bytes")));
                }
                let start = out.len();
                out.resize(start + len, 0);
                self.fill(&mut out[start..], what)
            }
            None => loop {
                let child = self.element_into(out, what, depth + 1)?;
                if child.is_eoc() {
                    return Ok(());
                }
            },
        }
    }

    /// Streams the content octets of an OCTET STRING-like element (primitive, or constructed
    /// from segments with definite or indefinite lengths) to `sink`, in chunks of `buf`'s size.
    pub fn stream_octets(
        &mut self,
        h: Header,
        buf: &mut [u8],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Bad>,
        depth: usize,
    ) -> Result<u64, Bad> {
        if depth > MAX_DEPTH {
            return Err(malformed("encrypted content nested too deep"));
        }
        if !h.constructed() {
            let Some(mut left) = h.len else { return Err(malformed("indefinite primitive")) };
            let total = left as u64;
            while left > 0 {
                let n = left.min(buf.len());
                self.fill(&mut buf[..n], "the encrypted content")?;
                sink(&buf[..n])?;
                left -= n;
            }
            return Ok(total);
        }
        let mut total = 0u64;
        let end = match h.len {
            Some(l) => {
                Some(self.pos.checked_add(l as u64).ok_or_else(|| malformed("encrypted content length overflows"))?)
            }
            None => None,
        };
        loop {
            if let Some(end) = end {
                if self.pos == end {
                    return Ok(total);
                }
                if self.pos > end {
                    return Err(malformed("encrypted content segments overrun their parent"));
                }
            }
            let child = self.header("an encrypted content segment")?;
            if child.is_eoc() {
                if end.is_some() {
                    return Err(malformed("end-of-contents inside a definite-length string"));
                }
                return Ok(total);
            }
            if child.tag & !0x20 != 0x04 {
                return Err(malformed(format!("encrypted content segment has tag 0x{:02X}", child.tag)));
            }
            total += self.stream_octets(child, buf, sink, depth + 1)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indefinite() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" }, NULL }
        let ber = [0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0, 0, 0x05, 0x00, 0, 0, 0xFF];
        let (t, rest) = Tlv::parse(&ber).unwrap();
        assert_eq!(rest, &[0xFF]);
        let kids = t.children().unwrap();
        assert_eq!(kids.len(), 2);
        assert_eq!(&*kids[0].octets().unwrap(), b"abc");
        assert_eq!(kids[1].tag, 0x05);

        let mut s = Stream::new(&ber[..]);
        assert_eq!(s.header("seq").unwrap().len, None);
        let h = s.header("str").unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1];
        let n = s
            .stream_octets(
                h,
                &mut buf,
                &mut |c| {
                    got.extend_from_slice(c);
                    Ok(())
                },
                0,
            )
            .unwrap();
        assert_eq!((n, &got[..]), (3, &b"abc"[..]));
        assert_eq!(s.element("null").unwrap(), vec![0x05, 0x00]);
    }

    #[test]
    fn hostile_lengths_are_errors() {
        assert!(matches!(Tlv::parse(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), Err(Bad::Truncated(_))));
        assert!(matches!(Tlv::parse(&[0x04, 0x80, 0, 0]), Err(Bad::Malformed(_))));
        assert!(matches!(Tlv::parse(&[0x1F, 0x01, 0x00]), Err(Bad::Malformed(_))));
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 100).flatten().collect();
        assert!(Tlv::parse(&deep).is_err());
        let mut s = Stream::new(&[0x30u8, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9][..]);
        assert!(s.element("x").is_err());
        let mut s = Stream::new(&[0x04u8, 0x84, 0x7F, 0xFF, 0xFF, 0xFF][..]);
        assert!(matches!(s.element("x"), Err(Bad::Malformed(_))));
    }
}
