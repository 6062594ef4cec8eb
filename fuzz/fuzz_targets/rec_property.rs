//! A RecordIO pack's `property` file (classes, height, width).
#![no_main]
use std::path::Path;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = regularface::data::recordio::parse_property(
        &String::from_utf8_lossy(data),
        Path::new("property"),
    );
});
