//! MNIST IDX files (header, dimensions, payload length).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = regularface::data::mnist::parse_idx(data, "fuzz.idx");
});
