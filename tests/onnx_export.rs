//! `regularface export` refuses requests without a usable checkpoint with a
//! clear error and writes nothing. (The exported graphs themselves are run in
//! an ONNX runtime by `interop/onnx_check`.)

use std::process::Command;

#[test]
fn export_requests_without_a_usable_checkpoint_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("rf-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("model.onnx");
    let run = |ckpt: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_regularface"))
            .args(["export", "--checkpoint"])
            .arg(ckpt)
            .arg("--onnx")
            .arg(&out)
            .output()
            .unwrap()
    };
    let missing = run(&dir.join("nope.safetensors"));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && err.contains("nope.safetensors"),
        "{err}"
    );
    // a checkpoint of an unknown model
    let bad = dir.join("unknown.safetensors");
    let meta = std::collections::BTreeMap::from([
        (
            "regularface.config".to_string(),
            r#"{"model": "resnet9000", "loss": "asoftmax"}"#.to_string(),
        ),
        ("regularface.classes".to_string(), "3".to_string()),
    ]);
    nn::checkpoint::save::<f32>(&bad, &[], &[], &meta).unwrap();
    let unknown = run(&bad);
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        !unknown.status.success() && err.contains("resnet9000"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written on error");
    std::fs::remove_dir_all(&dir).unwrap();
}
