//! Feeds arbitrary bytes to the envelope parser, as an attached envelope and as a detached
//! `pkcs7` value; any outcome but a panic, a hang or a huge allocation is fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = reclife::crypto::inspect(data, Path::new("fuzz-input"));
});
