//! Checkpoints in the safetensors format.
//!
//! Names and layouts are PyTorch's (dotted names, conv weights OIHW, linear
//! weights out x in), so `safetensors.torch.load_file` gives a `state_dict` that
//! loads into the equivalent PyTorch module. Writes are atomic: the bytes go to
//! `<file>.tmp` in the same folder, are synced, then renamed over the target, so
//! a crash leaves either the old file or the new one, never half of one. The
//! metadata holds an FNV-1a 64 checksum over every tensor's name, shape and
//! bytes, so a truncated or bit-flipped file is refused on load.
//!
//! Float tensors are F32 or F64; integer counters (BatchNorm's
//! `num_batches_tracked`) are int64 scalars, as PyTorch stores them.

use crate::module::{Module, TensorKind};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use tensor::{Element, Tensor};

/// Metadata key of the checksum.
pub const CHECKSUM_KEY: &str = "regularface.checksum";

/// Why a checkpoint could not be written or read.
#[derive(Debug)]
pub enum CheckpointError {
    /// The file system refused.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a valid safetensors file, or an unsupported dtype.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The stored checksum does not match the contents.
    Checksum {
        /// The file.
        path: PathBuf,
        /// Stored value.
        stored: String,
        /// Recomputed value.
        computed: String,
    },
    /// Names or shapes do not match the model; every problem is listed.
    Mismatch {
        /// One line per missing, unexpected or mis-shaped tensor.
        problems: Vec<String>,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io { path, source } => write!(f, "checkpoint {}: {source}", path.display()),
            CheckpointError::Format { path, detail } => write!(f, "checkpoint {}: not a valid safetensors file: {detail}", path.display()),
            CheckpointError::Checksum { path, stored, computed } => write!(
                f,
                "checkpoint {}: corrupt (checksum {computed} does not match the stored {stored}); the file was truncated or altered",
                path.display()
            ),
            CheckpointError::Mismatch { problems } => {
                write!(f, "checkpoint does not fit the model ({} problem(s)):", problems.len())?;
                problems.iter().try_for_each(|p| write!(f, "\n  - {p}"))
            }
        }
    }
}

impl std::error::Error for CheckpointError {}

/// Tensors and string metadata read from a checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint<T: Element> {
    /// Float tensors by name.
    pub tensors: BTreeMap<String, Tensor<T>>,
    /// Int64 scalars by name (BatchNorm's `num_batches_tracked`).
    pub counters: BTreeMap<String, i64>,
    /// The `__metadata__` entries (checksum included).
    pub metadata: BTreeMap<String, String>,
}

fn to_bytes<T: Element>(t: &Tensor<T>) -> Vec<u8> {
    let t = t.to_contiguous();
    let s = t.as_slice().expect("contiguous");
    match T::DTYPE {
        "F32" => s
            .iter()
            .flat_map(|v| v.to_f32().expect("f32").to_le_bytes())
            .collect(),
        _ => s
            .iter()
            .flat_map(|v| v.to_f64().expect("f64").to_le_bytes())
            .collect(),
    }
}

/// FNV-1a 64 over names, shapes and bytes, in name order.
fn checksum<'a>(entries: impl Iterator<Item = (&'a str, &'a [usize], &'a [u8])>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (name, shape, data) in entries {
        eat(name.as_bytes());
        shape.iter().for_each(|d| eat(&(*d as u64).to_le_bytes()));
        eat(data);
    }
    format!("{h:016x}")
}

/// Write float `tensors`, int64 scalar `counters` and `metadata` to `path`
/// atomically, with a checksum.
pub fn save<T: Element>(
    path: &Path,
    tensors: &[(String, Tensor<T>)],
    counters: &[(String, i64)],
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let float = if T::DTYPE == "F32" {
        Dtype::F32
    } else {
        Dtype::F64
    };
    let mut sorted: Vec<(&String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| (n, float, t.shape().to_vec(), to_bytes(t)))
        .chain(
            counters
                .iter()
                .map(|(n, c)| (n, Dtype::I64, vec![], c.to_le_bytes().to_vec())),
        )
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(CheckpointError::Format {
            path: path.into(),
            detail: format!("tensor name `{}` given twice", w[0].0),
        });
    }
    let mut meta: hashbrown::HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.insert(
        CHECKSUM_KEY.into(),
        checksum(
            sorted
                .iter()
                .map(|(n, _, s, b)| (n.as_str(), s.as_slice(), b.as_slice())),
        ),
    );
    let views: Vec<(String, TensorView<'_>)> = sorted
        .iter()
        .map(|(n, dtype, s, b)| {
            (
                n.to_string(),
                TensorView::new(*dtype, s.clone(), b).expect("bytes match shape and dtype"),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| CheckpointError::Format {
        path: path.into(),
        detail: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// The temporary file [`write_atomic`] writes `path` through: `<path>.tmp`.
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    path.with_file_name(tmp_name)
}

/// Write `bytes` to `path` through a synced temporary file and a rename; on
/// failure the temporary file is removed and `path` keeps its old contents.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.into(),
        source,
    };
    let tmp = temporary_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // A failed write (a full disk, say) must not leave its partial file
        // behind to keep the disk full; the previous `path` is untouched.
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Persist the rename itself; not every file system allows syncing a folder.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Read a checkpoint, converting F32 or F64 data to `T`, and verify its checksum when it has one.
pub fn load<T: Element>(path: &Path) -> Result<Checkpoint<T>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.into(),
        source,
    })?;
    from_bytes(&bytes, path)
}

/// Parse checkpoint bytes (`path` names the source in errors). Never panics
/// and never allocates more than the bytes given justify: the safetensors
/// header's offsets are checked against the buffer before any tensor is made.
pub fn from_bytes<T: Element>(bytes: &[u8], path: &Path) -> Result<Checkpoint<T>, CheckpointError> {
    let bad = |detail: String| CheckpointError::Format {
        path: path.into(),
        detail,
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let mut entries: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
    let mut tensors = BTreeMap::new();
    let mut counters = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        entries.push((name.clone(), view.shape().to_vec(), data.to_vec()));
        let values: Vec<T> = match view.dtype() {
            Dtype::I64 => {
                if view.shape().iter().product::<usize>() != 1 {
                    return Err(bad(format!(
                        "tensor `{name}` is int64 of shape {:?}; only int64 scalars (counters) are supported",
                        view.shape()
                    )));
                }
                let value = i64::from_le_bytes(data.try_into().expect("8 bytes"));
                counters.insert(name, value);
                continue;
            }
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| {
                    T::from_f64_lossy(f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                })
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| T::from_f64_lossy(f64::from_le_bytes(c.try_into().expect("8 bytes"))))
                .collect(),
            other => {
                return Err(bad(format!(
                    "tensor `{name}` has dtype {other:?}; only F32, F64 and int64 scalars are supported"
                )))
            }
        };
        let t = Tensor::from_vec(view.shape(), values)
            .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        tensors.insert(name, t);
    }
    if let Some(stored) = metadata.get(CHECKSUM_KEY) {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let computed = checksum(
            entries
                .iter()
                .map(|(n, s, b)| (n.as_str(), s.as_slice(), b.as_slice())),
        );
        if &computed != stored {
            return Err(CheckpointError::Checksum {
                path: path.into(),
                stored: stored.clone(),
                computed,
            });
        }
    }
    Ok(Checkpoint {
        tensors,
        counters,
        metadata,
    })
}

/// Named float tensors, as [`save`] takes them.
pub type NamedTensors<T> = Vec<(String, Tensor<T>)>;

/// A module's state split as a checkpoint stores it, names prefixed with
/// `prefix`: float tensors (parameters and buffers) and int64 counters.
pub fn module_state<T: Element>(
    module: &dyn Module<T>,
    prefix: &str,
) -> (NamedTensors<T>, Vec<(String, i64)>) {
    let (mut tensors, mut counters) = (vec![], vec![]);
    for (name, p, kind) in module.state_with_kinds() {
        let name = format!("{prefix}{name}");
        match kind {
            TensorKind::Counter => counters.push((name, counter_value(&p.value()))),
            _ => tensors.push((name, p.value().clone())),
        }
    }
    (tensors, counters)
}

/// A counter held as a scalar float, as the integer it stands for.
fn counter_value<T: Element>(t: &Tensor<T>) -> i64 {
    t.to_vec()
        .first()
        .and_then(|v| v.to_f64())
        .map_or(0, |v| v.round() as i64)
}

/// Save a module's parameters, buffers and counters (plus `extra` tensors, e.g.
/// optimiser state) atomically.
pub fn save_module<T: Element>(
    path: &Path,
    module: &dyn Module<T>,
    extra: &[(String, Tensor<T>)],
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let (mut tensors, counters) = module_state(module, "");
    tensors.extend(extra.iter().cloned());
    save(path, &tensors, &counters, metadata)
}

/// Load a module's parameters, buffers and counters from `ckpt`. Tensors whose
/// name starts with one of `ignore_prefixes` are not the model's (optimiser
/// state, classifier) and are skipped. Nothing is changed unless every name
/// and shape matches; otherwise every mismatch is listed. A missing counter is
/// not a mismatch: it reads as 0, as PyTorch loads BatchNorm states saved
/// before `num_batches_tracked` existed (and our own earlier checkpoints).
pub fn load_into<T: Element>(
    module: &dyn Module<T>,
    ckpt: &Checkpoint<T>,
    ignore_prefixes: &[&str],
) -> Result<(), CheckpointError> {
    let state = module.state_with_kinds();
    let mut problems = vec![];
    for (name, p, kind) in &state {
        if *kind == TensorKind::Counter {
            if ckpt.tensors.contains_key(name) {
                problems.push(format!(
                    "tensor `{name}` is a float in the file, the model expects an int64 counter"
                ));
            }
            continue;
        }
        match ckpt.tensors.get(name) {
            None => problems.push(format!(
                "missing tensor `{name}` (model expects shape {:?})",
                p.shape()
            )),
            Some(t) if t.shape() != p.shape().as_slice() => problems.push(format!(
                "tensor `{name}` has shape {:?} in the file, the model expects {:?}",
                t.shape(),
                p.shape()
            )),
            Some(_) => {}
        }
    }
    for name in ckpt.tensors.keys().chain(ckpt.counters.keys()) {
        if !ignore_prefixes.iter().any(|pre| name.starts_with(pre))
            && !state.iter().any(|(n, _, _)| n == name)
        {
            problems.push(format!("unexpected tensor `{name}` (not in the model)"));
        }
    }
    if !problems.is_empty() {
        return Err(CheckpointError::Mismatch { problems });
    }
    for (name, p, kind) in &state {
        if *kind == TensorKind::Counter {
            let count = ckpt.counters.get(name).copied().unwrap_or(0);
            p.set_value(Tensor::scalar(T::from_f64_lossy(count as f64)));
        } else {
            p.set_value(ckpt.tensors[name].clone());
        }
    }
    Ok(())
}
