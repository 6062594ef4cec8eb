//! Checkpoints: safetensors bytes to tensors and counters, then the run
//! configuration in their metadata.
#![no_main]
use std::path::Path;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(ck) = nn::checkpoint::from_bytes::<f32>(data, Path::new("fuzz.safetensors")) {
        if let Some(c) = ck.metadata.get("regularface.config") {
            if let Ok(cfg) = regularface::config::TrainConfig::from_json(c) {
                let _ = cfg.validate();
            }
        }
    }
});
