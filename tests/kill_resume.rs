//! Crash safety: a training process killed with SIGKILL at arbitrary moments
//! (also while a checkpoint is being written) and resumed with `--resume`
//! ends with weights bit-identical to an uninterrupted run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const FLAGS: &[&str] = &[
    "train",
    "--steps",
    "40",
    "--identities",
    "10",
    "--images-per-identity",
    "4",
    "--test-identities",
    "20",
    "--height",
    "32",
    "--width",
    "32",
    "--feature-dim",
    "32",
    "--batch",
    "8",
    "--checkpoint-every",
    "2",
    "--exclusive",
    "0.5",
    "--quiet",
    "--threads",
    "2",
];

fn command(out: &Path, resume: Option<&Path>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regularface"));
    c.args(FLAGS)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(r) = resume {
        c.arg("--resume").arg(r);
    }
    c
}

/// Every tensor of a checkpoint, as raw values.
fn weights(path: &Path) -> BTreeMap<String, Vec<f32>> {
    let ck = nn::checkpoint::load::<f32>(path).expect("a complete, valid checkpoint");
    ck.tensors
        .into_iter()
        .filter(|(k, _)| k.starts_with("backbone.") || k.starts_with("head."))
        .map(|(k, v)| (k, v.to_vec()))
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("regularface-kill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn killed_and_resumed_runs_end_bit_identical() {
    let reference = scratch("reference");
    assert!(command(&reference, None).status().unwrap().success());
    let want = weights(&reference.join("checkpoint.safetensors"));

    let mut interrupted_mid_run = 0;
    for (i, delay_ms) in [150u64, 300, 450, 600, 800].into_iter().enumerate() {
        let dir = scratch(&format!("killed{i}"));
        let mut child = command(&dir, None).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let ckpt = dir.join("checkpoint.safetensors");
        // The file, if any, is whole: the write is atomic (a temporary file and a rename).
        let resume = ckpt.exists().then_some(ckpt.as_path());
        if let Some(p) = resume {
            let ck =
                nn::checkpoint::load::<f32>(p).expect("a killed run leaves a valid checkpoint");
            if ck.metadata["regularface.step"] != "40" {
                interrupted_mid_run += 1;
            }
        }
        let status = command(&dir, resume).status().unwrap();
        assert!(
            status.success(),
            "resume after a kill at {delay_ms} ms failed"
        );
        assert_eq!(
            weights(&ckpt),
            want,
            "kill at {delay_ms} ms: weights differ from the uninterrupted run"
        );
    }
    assert!(
        interrupted_mid_run >= 1,
        "no kill landed between two checkpoints of the run; the delays need adjusting"
    );
}
