//! One RecordIO record (magic, length and continuation flags, padding) and
//! the image header inside it.
#![no_main]
use regularface::data::recordio::{read_record, ImageHeader};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut cursor = std::io::Cursor::new(data);
    if let Ok(payload) = read_record(&mut cursor, 0, data.len() as u64) {
        let _ = ImageHeader::unpack(&payload);
    }
});
