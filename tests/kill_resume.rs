//! Crash safety: a training process killed with SIGKILL at arbitrary moments
//! (also while a checkpoint is being written) and resumed with `--resume`
//! ends with every tensor (weights, head, optimiser state) bit-identical to an
//! uninterrupted run, with the exact regularizer and with the refreshing one.

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

fn command(out: &Path, refresh: u64, resume: Option<&Path>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regularface"));
    c.args(FLAGS)
        .args(["--exclusive-refresh", &refresh.to_string()])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(r) = resume {
        c.arg("--resume").arg(r);
    }
    c
}

/// Every tensor of a checkpoint as bits (so -0.0 and 0.0 differ), and the
/// regularizer's held neighbours.
fn state(path: &Path) -> (BTreeMap<String, Vec<u32>>, Option<String>) {
    let ck = nn::checkpoint::load::<f32>(path).expect("a complete, valid checkpoint");
    let cache = ck.metadata.get("regularface.exclusive_cache").cloned();
    let tensors = ck
        .tensors
        .into_iter()
        .map(|(k, v)| (k, v.to_vec().iter().map(|x| x.to_bits()).collect()))
        .collect();
    (tensors, cache)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("regularface-kill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn killed_and_resumed_runs_end_bit_identical_exact_regularizer() {
    killed_and_resumed(1);
}

#[test]
fn killed_and_resumed_runs_end_bit_identical_refreshing_regularizer() {
    killed_and_resumed(5);
}

fn killed_and_resumed(refresh: u64) {
    let reference = scratch(&format!("reference{refresh}"));
    assert!(command(&reference, refresh, None)
        .status()
        .unwrap()
        .success());
    let want = state(&reference.join("checkpoint.safetensors"));
    assert!(want.0.keys().any(|k| k.starts_with("optim.")));
    assert_eq!(want.1.is_some(), refresh > 1, "held neighbours are saved");

    let mut interrupted_mid_run = 0;
    for (i, delay_ms) in [150u64, 300, 450, 600, 800].into_iter().enumerate() {
        let dir = scratch(&format!("killed{refresh}-{i}"));
        let mut child = command(&dir, refresh, None).spawn().unwrap();
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
        let status = command(&dir, refresh, resume).status().unwrap();
        assert!(
            status.success(),
            "resume after a kill at {delay_ms} ms failed"
        );
        assert!(
            state(&ckpt) == want,
            "refresh {refresh}, kill at {delay_ms} ms: the state differs from the uninterrupted run"
        );
    }
    assert!(
        interrupted_mid_run >= 1,
        "no kill landed between two checkpoints of the run; the delays need adjusting"
    );
}
