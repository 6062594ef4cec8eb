//! LFW `people.txt`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = regularface::data::lfw::parse_people(&String::from_utf8_lossy(data), "people.txt");
});
