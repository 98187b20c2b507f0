//! Arbitrary text as a node config file: a config or an error naming the line, never a panic;
//! a config that parses must give the muxer a window without overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(mut c) = reclife::config::Config::parse(text) {
            c.resolve_against(std::path::Path::new("/etc/reclife"));
            let w = reclife::muxer::window::Window::polling(&c.muxer, chrono::Utc::now());
            let _ = w.intervals(&c.muxer);
        }
    }
});
