//! No library: the check is `tests/onnx_export.rs`.
