//! insightface `.bin` verification sets: the pickle reader, then the
//! (images, issame) structure.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(v) = regularface::data::pickle::load(data) {
        let _ = regularface::data::verification_bin::from_value(v);
    }
});
