//! The command line: error paths print one clear line and exit non-zero; the
//! main job runs end to end in a tiny setting.

mod common;

use std::process::Command;

fn regularface(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_regularface"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run the binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn error_paths_print_one_clear_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--margin", "7", "--steps", "1"],
            "--margin 7 is not valid for A-Softmax: choose 1, 2, 3 or 4",
        ),
        (
            &["train", "--exclusive=-0.5", "--steps", "1"],
            "--exclusive -0.5 must be a non-negative number",
        ),
        (
            &["train", "--data", "/nonexistent/faces", "--steps", "1"],
            "data folder /nonexistent/faces does not exist",
        ),
        (
            &["train", "--lfw", "/nonexistent/lfw", "--steps", "1"],
            "cannot read /nonexistent/lfw/pairs.txt",
        ),
        (&["train", "--batch", "1"], "--batch 1 must be at least 2"),
        (
            &[
                "verify",
                "--checkpoint",
                "/nonexistent/c.safetensors",
                "a.png",
                "b.png",
            ],
            "checkpoint /nonexistent/c.safetensors",
        ),
        (
            &["compare", "--with-exclusive", "0"],
            "--with-exclusive 0 must be positive",
        ),
    ];
    for (args, want) in cases {
        let (ok, _, err) = regularface(args);
        assert!(!ok, "{args:?} should fail");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(
            lines[0].contains(want),
            "{args:?}: got `{}`, want `{want}`",
            lines[0]
        );
        assert!(
            !err.contains("panicked") && !err.contains("stack backtrace"),
            "{args:?}: {err}"
        );
    }
    // an empty data folder, and a checkpoint resumed with another model
    let dir = std::env::temp_dir().join(format!("regularface-cli-errors-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("empty").join("nobody")).unwrap();
    let (ok, _, err) = regularface(&[
        "train",
        "--data",
        dir.join("empty").to_str().unwrap(),
        "--steps",
        "1",
    ]);
    assert!(!ok && err.contains("holds no images"), "{err}");
    let run = dir.join("run");
    let tiny = [
        "--steps",
        "2",
        "--identities",
        "4",
        "--images-per-identity",
        "3",
        "--test-identities",
        "20",
        "--height",
        "32",
        "--width",
        "32",
        "--feature-dim",
        "16",
        "--quiet",
    ];
    let mut first = vec!["train", "--out", run.to_str().unwrap()];
    first.extend(tiny);
    assert!(regularface(&first).0);
    let ckpt = run.join("checkpoint.safetensors");
    let mut other = first.clone();
    other.extend([
        "--model",
        "sphereface10",
        "--resume",
        ckpt.to_str().unwrap(),
    ]);
    let (ok, _, err) = regularface(&other);
    assert!(
        !ok && err.lines().count() == 2
            && err.contains("was trained with a different configuration"),
        "{err}"
    );
    // `info` names the back end, for bug reports
    let (ok, stdout, _) = regularface(&["info"]);
    assert!(
        ok && stdout.contains("threads") && stdout.contains("f32 GEMM"),
        "{stdout}"
    );
    // clap's own errors for unknown values are one line too
    let (ok, _, err) = regularface(&["train", "--model", "resnet"]);
    assert!(!ok && err.contains("invalid value 'resnet'"), "{err}");
}

#[test]
fn compare_train_embed_and_verify_end_to_end() {
    let dir = std::env::temp_dir().join(format!("regularface-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.to_str().unwrap();
    let tiny = [
        "--steps",
        "4",
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
        "--quiet",
    ];
    let mut args = vec!["compare", "--out", out];
    args.extend(tiny);
    let (ok, stdout, err) = regularface(&args);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("baseline") && stdout.contains("exclusive") && stdout.contains("Sep mean"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("compare.json")).unwrap()).unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 2);
    assert_eq!(report["runs"][1]["lambda_r"], 1.0);
    assert_eq!(report["lambda_r"], 1.0);

    // over two seeds: each seed's pair, and paired statistics over the seeds
    let seeds_dir = dir.join("seeds");
    let mut args = vec![
        "compare",
        "--seeds",
        "1..2",
        "--out",
        seeds_dir.to_str().unwrap(),
    ];
    args.extend(tiny);
    let (ok, stdout, err) = regularface(&args);
    assert!(ok && stdout.contains("over 2 seeds"), "{err}\n{stdout}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(seeds_dir.join("compare_seeds.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 4);
    assert_eq!(report["paired"]["asoftmax"]["n"], 2);
    assert!(report["mcnemar"]["asoftmax"]["p_value"].as_f64().is_some());
    assert!(seeds_dir.join("seed2/exclusive/report.json").exists());
    let (ok, _, err) = regularface(&["compare", "--seeds", "3..x"]);
    assert!(!ok && err.contains("write 1..10 or 1,2,5"), "{err}");

    // embed and verify with the trained checkpoint on two images written to disk
    let ckpt = dir.join("baseline").join("checkpoint.safetensors");
    let img = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 8) as u8, 90])
    });
    let (a, b) = (dir.join("a.png"), dir.join("b.png"));
    img.save(&a).unwrap();
    image::imageops::flip_horizontal(&img).save(&b).unwrap();
    let (ok, stdout, err) = regularface(&[
        "embed",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        a.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        stdout.trim().split(',').count(),
        1 + 64,
        "path plus 2 x 32 features"
    );
    let (ok, stdout, err) = regularface(&[
        "verify",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("cosine")
            && (stdout.contains("same person") || stdout.contains("different people")),
        "{stdout}"
    );
    // a model checkpoint that does not exist as an image
    let (ok, _, err) = regularface(&[
        "embed",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "/nonexistent.png",
    ]);
    assert!(!ok && err.contains("cannot read /nonexistent.png"), "{err}");
}

#[test]
fn mnist_toy_smoke_when_mnist_is_present() {
    let Some(mnist) = common::shared_data("mnist", "") else {
        return;
    };
    let out = std::env::temp_dir().join(format!("regularface-toy-{}", std::process::id()));
    let toy = [
        "mnist-toy",
        "--mnist",
        mnist.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "3",
        "--test-images",
        "300",
        "--quiet",
    ];
    let (ok, stdout, err) = regularface(&toy);
    assert!(ok, "{err}");
    assert!(stdout.contains("asoftmax_exclusive"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("mnist_toy.json")).unwrap())
            .unwrap();
    assert_eq!(report.as_array().unwrap().len(), 3);
    for name in ["softmax", "asoftmax", "asoftmax_exclusive"] {
        let png = std::fs::read(out.join(format!("{name}_sphere.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name} picture");
    }
    // Two seeds, each a part of its own; a second invocation reads the parts back.
    let seeds_args = [&toy[..], &["--seeds", "1..2"]].concat();
    let (ok, _, err) = regularface(&seeds_args);
    assert!(ok, "{err}");
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("mnist_toy_seeds.json")).unwrap())
            .unwrap()
    };
    let first = read();
    let runs = first["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    for (row, (seed, loss, lambda_r)) in runs.iter().zip([
        (1, "softmax", 0.0),
        (1, "asoftmax", 0.0),
        (1, "asoftmax", 1.0),
        (2, "softmax", 0.0),
        (2, "asoftmax", 0.0),
        (2, "asoftmax", 1.0),
    ]) {
        assert_eq!(row["seed"], seed);
        assert_eq!(row["loss"], loss);
        assert_eq!(row["lambda_r"], lambda_r);
        assert!((0.0..=1.0).contains(&row["accuracy"].as_f64().unwrap()));
    }
    assert_eq!(first["pictures"].as_array().unwrap().len(), 3);
    let paired = &first["paired"]["asoftmax"];
    assert_eq!(paired["n"], 2, "{paired}");
    let diff = |seed: u64| {
        let acc = |lambda_r: f64| {
            runs.iter()
                .find(|r| r["seed"] == seed && r["loss"] == "asoftmax" && r["lambda_r"] == lambda_r)
                .unwrap()["accuracy"]
                .as_f64()
                .unwrap()
        };
        acc(1.0) - acc(0.0)
    };
    let mean = (diff(1) + diff(2)) / 2.0;
    assert!(
        (paired["mean_diff"].as_f64().unwrap() - mean).abs() < 1e-12,
        "{paired}"
    );
    let part = out.join("seed2").join("mnist_toy.json");
    let modified = std::fs::metadata(&part).unwrap().modified().unwrap();
    let (ok, _, err) = regularface(&seeds_args);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::metadata(&part).unwrap().modified().unwrap(),
        modified
    );
    assert_eq!(read()["runs"], first["runs"]);
}

#[test]
fn lfw_ablation_smoke_when_lfw_is_present() {
    let Some(lfw) = common::shared_data("lfw", "pairs.txt") else {
        return;
    };
    let out = std::env::temp_dir().join(format!("regularface-ablation-{}", std::process::id()));
    let args = [
        "ablation",
        "--lfw",
        lfw.to_str().unwrap(),
        "--fold",
        "3",
        "--steps",
        "2",
        "--grid-steps",
        "1",
        "--grid",
        "0.5,1",
        "--seeds",
        "1,2",
        "--height",
        "32",
        "--width",
        "32",
        "--feature-dim",
        "16",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, stdout, err) = regularface(&args);
    assert!(ok, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ablation.json")).unwrap()).unwrap();
    assert_eq!(report["test_fold"], 3);
    assert_eq!(report["lambda_choice"].as_array().unwrap().len(), 3);
    // softmax and center: one seed, with and without; A-Softmax: two seeds.
    assert_eq!(
        report["runs"].as_array().unwrap().len(),
        2 + 2 + 4,
        "{stdout}"
    );
    assert_eq!(
        (
            report["base"]["steps"].as_u64(),
            report["grid_steps"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let run = &report["runs"][0];
    assert_eq!(run["fold"], 3);
    assert!(run["auc"].as_f64().is_some());
    assert_eq!(
        run["decisions"].as_str().unwrap().len(),
        600,
        "one per test pair"
    );

    // λ_r fixed in advance: no grid; a repeated invocation only evaluates the finished runs.
    let fixed_out = out.join("fixed");
    let fixed = [
        "ablation",
        "--lfw",
        lfw.to_str().unwrap(),
        "--fold",
        "3",
        "--steps",
        "2",
        "--height",
        "32",
        "--width",
        "32",
        "--feature-dim",
        "16",
        "--quiet",
        "--out",
        fixed_out.to_str().unwrap(),
        "--lambda-r",
        "2",
        "--losses",
        "asoftmax",
        "--seeds",
        "1",
    ];
    let (ok, first, err) = regularface(&fixed);
    assert!(ok, "{err}");
    let (ok, again, err) = regularface(&fixed);
    assert!(
        ok && err.matches("continuing from step 2").count() == 2,
        "{err}"
    );
    assert_eq!(first, again, "the same report from the finished runs");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixed_out.join("ablation.json")).unwrap())
            .unwrap();
    assert_eq!(report["lambda_choice"][0]["chosen"], 2.0);
    assert_eq!(
        report["lambda_choice"][0]["grid"].as_array().unwrap().len(),
        0
    );

    // the parts summarised: one fold here, paired over folds in the report
    let summary = out.join("summary.json");
    let (ok, stdout, err) = regularface(&[
        "ablation",
        "summarize",
        fixed_out.to_str().unwrap(),
        "--out",
        summary.to_str().unwrap(),
    ]);
    assert!(ok && stdout.contains("asoftmax"), "{err}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["mcnemar"]["asoftmax"]["n"], 600);
    // one fold: no t-test of accuracy or of AUC, but the keys are there
    assert!(s["paired"]["asoftmax"].is_null() && s["paired_auc"]["asoftmax"].is_null());
    assert!(s["paired_auc"]
        .as_object()
        .unwrap()
        .contains_key("asoftmax"));
    assert_eq!(s["runs"].as_array().unwrap().len(), 2);
    let (ok, _, err) = regularface(&["ablation", "summarize", "/nonexistent", "--out", "x.json"]);
    assert!(!ok && err.contains("cannot read /nonexistent"), "{err}");

    // eval refuses a fold whose pairs were among the model's training people
    let ckpt = fixed_out.join("Asoftmax_lr0_seed1/checkpoint.safetensors");
    let (ok, _, err) = regularface(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--lfw",
        lfw.to_str().unwrap(),
        "--fold",
        "4",
        "--out",
        out.join("eval").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("held out") && err.contains("--fold 3"),
        "{err}"
    );

    // A subset of the losses, as when the ablation is split over invocations.
    let mut subset = args.to_vec();
    subset.extend(["--losses", "center"]);
    let (ok, _, err) = regularface(&subset);
    assert!(ok, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ablation.json")).unwrap()).unwrap();
    let losses: Vec<_> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["loss"].clone())
        .collect();
    assert_eq!(losses, vec![serde_json::json!("center"); 2]);
}

/// Peak memory a `train` printed (`peak memory N MiB`).
fn peak_mib(stderr: &str) -> f64 {
    let at = stderr
        .find("peak memory ")
        .expect("train prints its peak memory")
        + 12;
    stderr[at..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn training_streams_a_pack_with_memory_flat_in_its_size() {
    let dir = std::env::temp_dir().join(format!("regularface-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // 30 identities of 4 JPEG faces-to-be; the large pack repeats each image 20 times
    let (small, large) = (dir.join("small"), dir.join("large"));
    for id in 0..30u32 {
        for (root, copies) in [(&small, 1), (&large, 20)] {
            let person = root.join(format!("id{id:02}"));
            std::fs::create_dir_all(&person).unwrap();
            for k in 0..4u32 {
                let img = image::RgbImage::from_fn(112, 112, |x, y| {
                    image::Rgb([
                        (x * 2 + id * 7) as u8,
                        (y * 2 + k * 30) as u8,
                        (id * 5) as u8,
                    ])
                });
                for c in 0..copies {
                    img.save(person.join(format!("{k}_{c}.jpg"))).unwrap();
                }
            }
        }
    }
    let pairs = dir.join("pairs.bin");
    let mut peaks = vec![];
    for (root, images) in [(&small, 120), (&large, 2400)] {
        let pack = root.with_extension("pack");
        let (ok, stdout, err) = regularface(&[
            "pack",
            "--images",
            root.to_str().unwrap(),
            "--out",
            pack.to_str().unwrap(),
        ]);
        assert!(
            ok && stdout.contains(&format!("packed {images} images of 30 identities")),
            "{err}"
        );
        if !pairs.exists() {
            // a verification set from the small pack's images, written by our own writer
            let img = |id: u32, k: u32| {
                std::fs::read(small.join(format!("id{id:02}/{k}_0.jpg"))).unwrap()
            };
            let set = regularface::data::verification_bin::BinSet {
                images: (0..20)
                    .flat_map(|i| [img(i, 0), img(if i % 2 == 0 { i } else { i + 1 }, 1)])
                    .collect(),
                issame: (0..20).map(|i| i % 2 == 0).collect(),
            };
            regularface::data::verification_bin::write(&pairs, &set).unwrap();
        }
        let out = dir.join(format!("run{images}"));
        let (ok, stdout, err) = regularface(&[
            "train",
            "--rec",
            pack.to_str().unwrap(),
            "--rec-pairs",
            pairs.to_str().unwrap(),
            "--steps",
            "30",
            "--batch",
            "16",
            "--height",
            "56",
            "--width",
            "48",
            "--feature-dim",
            "32",
            "--quiet",
            "--threads",
            "2",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            ok && stdout.contains("over 10 folds (20 pairs)"),
            "{err}\n{stdout}"
        );
        assert!(
            err.contains(&format!("{images} training images of 30 identities")),
            "{err}"
        );
        peaks.push(peak_mib(&err));
    }
    // 20 times the images (about 20x the bytes on disk): peak memory within a few MiB
    assert!(
        peaks[1] < peaks[0] + 16.0,
        "peak memory {peaks:?} MiB grows with the pack"
    );
    let (ok, _, err) = regularface(&["train", "--rec", small.to_str().unwrap()]);
    assert!(!ok && err.contains("--rec-pairs"), "{err}");
}
