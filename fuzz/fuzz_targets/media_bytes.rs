//! Arbitrary bytes as a screen recording's MP4 boxes and as a voice file's MP3 frames (the parsers
//! the muxer runs itself before FFmpeg or symphonia see a file); any outcome but a panic, a hang or
//! a huge allocation is fine.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reclife::media::parse_untrusted(data);
});
