//! Java `.properties` syntax, as RCBS's `config.properties` is written: `key=value`,
//! `key: value` or `key value`; `#` and `!` comments; a trailing odd `\` continues the line;
//! escapes `\t \n \r \f \uXXXX`, and `\x` for any other character stands for `x` (so
//! `audio\/mp3` is `audio/mp3`). Each entry keeps the line it started on, for error messages.

/// One `key = value` entry and the (1-based) line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// Parses properties text. Fails only on a malformed `\u` escape, naming its line.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut i = 0;
    while i < lines.len() {
        let first = i + 1;
        let mut logical = String::new();
        let mut cur = lines[i].trim_start_matches([' ', '\t', '\x0c']);
        i += 1;
        if logical.is_empty() && (cur.is_empty() || cur.starts_with('#') || cur.starts_with('!')) {
            continue;
        }
        loop {
            // A line ending in an odd number of backslashes continues on the next line.
            let trailing = cur.len() - cur.trim_end_matches('\\').len();
            if trailing % 2 == 1 && i <= lines.len() {
                logical.push_str(&cur[..cur.len() - 1]);
                if i == lines.len() {
                    break;
                }
                cur = lines[i].trim_start_matches([' ', '\t', '\x0c']);
                i += 1;
            } else {
                logical.push_str(cur);
                break;
            }
        }
        let (key, value) = split_key(&logical);
        out.push(Entry {
            line: first,
            key: unescape(key).map_err(|e| format!("line {first}: {e}"))?,
            value: unescape(value).map_err(|e| format!("line {first}: {e}"))?,
        });
    }
    Ok(out)
}

/// Splits at the first unescaped `=`, `:` or whitespace; the separator and the blanks around
/// it are dropped. Both halves are still escaped.
fn split_key(s: &str) -> (&str, &str) {
    let b = s.as_bytes();
    let mut k = 0;
    while k < b.len() {
        match b[k] {
            b'\\' => k += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => k += 1,
        }
    }
    let k = k.min(b.len());
    let key = &s[..k];
    let mut rest = s[k..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => {}
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let cp = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .ok_or_else(|| format!("malformed \\u escape \\u{hex}"))?;
                out.push(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(other) => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_properties_syntax() {
        let text = "# comment\n  ! also a comment\ngwsUriPrefix=https://example.com/api/v2\r\n\
                    mediaTypePattern = audio\\/mp3|video\\/mp4\ntargetDir : /data/x\nminAge 0\n\
                    long = a\\\n    b\\\\\nempty=\nuni=\\u0041z\n";
        let e = parse(text).unwrap();
        let kv: Vec<(usize, &str, &str)> = e.iter().map(|e| (e.line, e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(
            kv,
            vec![
                (3, "gwsUriPrefix", "https://example.com/api/v2"),
                (4, "mediaTypePattern", "audio/mp3|video/mp4"),
                (5, "targetDir", "/data/x"),
                (6, "minAge", "0"),
                (7, "long", "ab\\"),
                (9, "empty", ""),
                (10, "uni", "Az"),
            ]
        );
        assert!(parse("x=\\u12\n").unwrap_err().starts_with("line 1:"));
    }
}
