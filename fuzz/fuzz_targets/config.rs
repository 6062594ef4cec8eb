//! A run configuration as JSON (checkpoint metadata, `--config` files).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = regularface::config::TrainConfig::from_json(&String::from_utf8_lossy(data)) {
        let _ = cfg.validate();
    }
});
