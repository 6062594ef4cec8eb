//! `regularface info`: version and compute back end, for bug reports.

use anyhow::Result;

/// Run `info`.
pub fn run() -> Result<()> {
    println!("regularface {}", env!("CARGO_PKG_VERSION"));
    println!("{}", tensor::backend::describe());
    Ok(())
}
