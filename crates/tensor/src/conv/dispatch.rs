//! Which algorithm runs a convolution: the Winograd kernels where they pay
//! (3x3 and 5x5 stride-1 layers with enough channels and tiles), im2col + GEMM
//! everywhere else, or what `REGULARFACE_CONV` forces (see `crate::backend`).

use super::winograd::{self, tiles};
use super::winograd5;
use super::Geometry;
use crate::Element;

/// Tiles a call must have over the whole batch (both paths). The weights are
/// transformed on every call (16·O·C or 36·O·C values), which only pays off
/// when the GEMMs that use them are wide: below this, im2col is faster
/// (measured on the 3x3 path: batch 1 inference and the 7x6 stage at batch 8
/// ran slower on Winograd).
const MIN_TILES: usize = 256;

/// Whether a convolution runs on a Winograd path: 3x3 (`winograd`) or 5x5
/// (`winograd5`), stride 1, padding at most k - 1, enough channels on both
/// sides for the per-ξ GEMMs to be worth it (the first layers of a network,
/// with 1-3 input channels, stay on im2col), and at least [`MIN_TILES`]
/// output tiles in the batch. `REGULARFACE_CONV=im2col` switches it off,
/// `REGULARFACE_CONV=winograd` on for every 3x3 and 5x5 stride-1 convolution
/// (comparisons and tests); read once.
fn applies(g: &Geometry) -> bool {
    let k = g.kh;
    let shape = (k == 3 || k == 5)
        && g.kw == k
        && g.p.stride == (1, 1)
        && g.p.padding.0 < k
        && g.p.padding.1 < k;
    let (th, tw) = tiles(g.ho, g.wo);
    let worth_it = g.c >= 16 && g.o >= 16 && g.n * th * tw >= MIN_TILES;
    shape && forced().unwrap_or(worth_it)
}

/// The three passes of the Winograd kernel that takes a convolution, if one
/// does: F(2x2, 3x3) for 3x3 layers, F(2x2, 5x5) for 5x5 ones (see
/// [`applies`] for which).
pub(super) struct Kernels<T> {
    /// Forward, no bias.
    pub(super) forward: fn(&Geometry, &[T], &[T], &mut [T]),
    /// Input gradient.
    pub(super) input_grad: fn(&Geometry, &[T], &[T], &mut [T]),
    /// Weight gradient.
    pub(super) weight_grad: fn(&Geometry, &[T], &[T]) -> Vec<T>,
}

impl<T: Element> Kernels<T> {
    /// The kernels for `g`, or `None` when it stays on im2col.
    pub(super) fn for_geometry(g: &Geometry) -> Option<Self> {
        if !applies(g) {
            return None;
        }
        Some(if g.kh == 3 {
            Kernels {
                forward: winograd::forward,
                input_grad: winograd::input_grad,
                weight_grad: winograd::weight_grad,
            }
        } else {
            Kernels {
                forward: winograd5::forward,
                input_grad: winograd5::input_grad,
                weight_grad: winograd5::weight_grad,
            }
        })
    }
}

/// `REGULARFACE_CONV` as the back end read it: `Some(false)` for `im2col`,
/// `Some(true)` for `winograd`, `None` for the default rule.
fn forced() -> Option<bool> {
    match crate::backend::get().conv {
        crate::backend::ConvMode::Im2col => Some(false),
        crate::backend::ConvMode::Winograd => Some(true),
        crate::backend::ConvMode::Auto => None,
    }
}
