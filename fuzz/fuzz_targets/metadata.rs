//! Arbitrary bytes as a GIR metadata document (bare, or in the `{"statusCode":0,"recording":…}`
//! wrapper): a recording or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = reclife::model::Recording::parse(text) {
            // What parsed must also survive the operations the catalog and archives apply.
            let _ = r.doc_value();
            let _ = r.bytes();
            for m in &r.media {
                let _ = reclife::storage::Key::media(&r.id, &m.media_id);
            }
        }
    }
});
