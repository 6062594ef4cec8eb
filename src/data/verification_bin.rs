//! insightface's `.bin` verification sets (lfw.bin, cfp_fp.bin, agedb_30.bin):
//! a pickle of `(bins, issame_list)`, `2N` encoded images (pairs are images
//! `2i` and `2i + 1`) and `N` booleans. Read in every flavour [`super::pickle`]
//! knows; written as protocol 4 with `bytes`, which insightface reads.

use super::pickle::{self, Value};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// A verification set: encoded images and, per pair, whether it is one person.
#[derive(Debug, Clone, PartialEq)]
pub struct BinSet {
    /// `2N` encoded images (JPEG or PNG).
    pub images: Vec<Vec<u8>>,
    /// `N` same-person flags for pairs `(2i, 2i + 1)`.
    pub issame: Vec<bool>,
}

/// Interpret a loaded pickle as a verification set.
pub fn from_value(v: Value) -> Result<BinSet> {
    let Value::Tuple(parts) = v else {
        bail!(
            "expected a (bins, issame_list) tuple at the top, found {}",
            kind(&v)
        );
    };
    let [bins, same] = &parts[..] else {
        bail!(
            "expected a 2-tuple (bins, issame_list), found {} items",
            parts.len()
        );
    };
    let (Value::List(bins), Value::List(same)) = (bins, same) else {
        bail!(
            "expected two lists, found {} and {}",
            kind(bins),
            kind(same)
        );
    };
    let images = bins
        .iter()
        .enumerate()
        .map(|(i, b)| match b {
            Value::Bytes(b) => Ok(b.to_vec()),
            Value::Array { data, shape, .. } if shape.len() == 1 => Ok(data.to_vec()),
            other => bail!(
                "image {i} is {} (expected bytes or a 1-D uint8 array)",
                kind(other)
            ),
        })
        .collect::<Result<Vec<_>>>()?;
    let issame = same
        .iter()
        .enumerate()
        .map(|(i, s)| match s {
            Value::Bool(b) => Ok(*b),
            Value::Int(v @ (0 | 1)) => Ok(*v == 1),
            other => bail!("issame_list[{i}] is {} (expected a bool)", kind(other)),
        })
        .collect::<Result<Vec<_>>>()?;
    if images.len() != 2 * issame.len() {
        bail!(
            "{} images for {} pairs; a verification set has two images per pair",
            images.len(),
            issame.len()
        );
    }
    Ok(BinSet { images, issame })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Bytes(_) => "bytes",
        Value::Str(_) => "a string",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Dict(_) => "a dict",
        Value::Global(_) => "a global",
        Value::Array { .. } => "a numpy array",
        Value::Call(..) => "an object",
    }
}

/// Read a `.bin` file.
pub fn read(path: &Path) -> Result<BinSet> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    pickle::load(&bytes)
        .and_then(from_value)
        .with_context(|| format!("{}: not a verification set", path.display()))
}

/// The pickle (protocol 4, no framing) of `(images, issame)`.
pub fn encode(set: &BinSet) -> Vec<u8> {
    let mut out = vec![0x80, 4];
    out.extend_from_slice(b"](");
    for img in &set.images {
        out.push(0x8e); // BINBYTES8
        out.extend_from_slice(&(img.len() as u64).to_le_bytes());
        out.extend_from_slice(img);
    }
    out.extend_from_slice(b"e](");
    for &s in &set.issame {
        out.push(if s { 0x88 } else { 0x89 });
    }
    out.extend_from_slice(b"e");
    out.push(0x86); // TUPLE2
    out.push(b'.');
    out
}

/// Write a `.bin` file atomically.
pub fn write(path: &Path, set: &BinSet) -> Result<()> {
    if set.images.len() != 2 * set.issame.len() {
        bail!("{} images for {} pairs", set.images.len(), set.issame.len());
    }
    nn::checkpoint::write_atomic(path, &encode(set))?;
    Ok(())
}
