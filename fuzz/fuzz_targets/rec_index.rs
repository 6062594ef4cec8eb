//! A RecordIO pack's `train.idx` (key, offset lines).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = regularface::data::recordio::parse_index(&String::from_utf8_lossy(data), "train.idx");
});
