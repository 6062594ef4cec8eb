//! Image decoding (JPEG, PNG, PNM, BMP) and the preprocessing training applies.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(img) = regularface::data::images::decode_image(data) {
        let _ = regularface::data::images::preprocess(&img, 3, 12, 10);
    }
});
