//! Arbitrary text as a rule file: a rule or problems with lines, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(rule) = reclife::lifecycle::rules::parse_rule(
            std::path::Path::new("fuzz.toml"),
            text,
            Some("file:///nonexistent/fuzz"),
            false,
        ) {
            // A rule that validates must also plan: its ages become a query without overflow.
            let now = chrono::Utc::now();
            for t in &rule.tasks {
                let _ = t.filter.query(now, None, 24);
            }
        }
    }
});
