//! LFW `pairs.txt`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = regularface::data::lfw::parse_pairs(&String::from_utf8_lossy(data), "pairs.txt");
});
