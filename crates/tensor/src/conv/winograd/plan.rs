//! The matrices of Winograd's F(2, r) for r = 3 and 5: `y = Aᵀ [(G g) ⊙ (Bᵀ d)]`
//! computes two outputs of an r-tap correlation from α = r + 1 inputs.
//!
//! Construction (Toom-Cook on the points a_0..a_{α-2} and ∞): `Aᵀ[i][ξ] = a_ξ^i`,
//! `G[ξ][k] = a_ξ^k`, and for ∞ `Aᵀ[i][∞] = [i = 1]`, `G[∞][k] = [k = r - 1]`.
//! Then `Σ_ξ Aᵀ[i][ξ] G[ξ][k] Bᵀ[ξ][l]` must be `[l = i + k]`; since
//! `Aᵀ[i][ξ] G[ξ][k]` depends only on s = i + k (it is `P[s][ξ] = a_ξ^s`, and
//! `[s = α - 1]` for ∞), that says `P · Bᵀ = I`: `Bᵀ = P⁻¹`. Rows of G are
//! scaled to a largest entry of 1 and the same rows of Bᵀ scaled up, which
//! leaves the product unchanged and keeps f32 intermediates small.
//!
//! F(2, 3) uses Lavin & Gray's matrices (points 0, 1, -1), which the
//! specialised 3x3 transforms of `transforms.rs` hard-code; F(2, 5) uses the
//! points 0, 1, -1, 2, -2.

use std::sync::OnceLock;

/// Winograd F(2, r) in f64, row-major.
pub(in crate::conv) struct Plan {
    /// Kernel size r.
    pub r: usize,
    /// Tile size α = r + 1.
    pub alpha: usize,
    /// Bᵀ, α x α.
    pub bt: Vec<f64>,
    /// G, α x r.
    pub g: Vec<f64>,
    /// Aᵀ, 2 x α.
    pub at: Vec<f64>,
}

/// The plan for a kernel of size `r` (3 or 5).
pub(in crate::conv) fn plan(r: usize) -> &'static Plan {
    static F3: OnceLock<Plan> = OnceLock::new();
    static F5: OnceLock<Plan> = OnceLock::new();
    match r {
        3 => F3.get_or_init(|| Plan {
            r: 3,
            alpha: 4,
            bt: vec![
                1., 0., -1., 0., //
                0., 1., 1., 0., //
                0., -1., 1., 0., //
                0., 1., 0., -1.,
            ],
            g: vec![1., 0., 0., 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0., 0., 1.],
            at: vec![1., 1., 1., 0., 0., 1., -1., -1.],
        }),
        5 => F5.get_or_init(|| toom_cook(5, &[0., 1., -1., 2., -2.])),
        _ => panic!("winograd: no plan for a {r}x{r} kernel"),
    }
}

/// F(2, r) on the given α - 1 finite points (see the module text).
fn toom_cook(r: usize, points: &[f64]) -> Plan {
    let alpha = r + 1;
    assert_eq!(points.len(), alpha - 1, "toom_cook: needs r finite points");
    let mut at = vec![0.0; 2 * alpha];
    let mut g = vec![0.0; alpha * r];
    let mut p = vec![0.0; alpha * alpha];
    for (xi, &a) in points.iter().enumerate() {
        for i in 0..2 {
            at[i * alpha + xi] = a.powi(i as i32);
        }
        for k in 0..r {
            g[xi * r + k] = a.powi(k as i32);
        }
        for s in 0..alpha {
            p[s * alpha + xi] = a.powi(s as i32);
        }
    }
    let inf = alpha - 1;
    at[alpha + inf] = 1.0;
    g[inf * r + r - 1] = 1.0;
    p[inf * alpha + inf] = 1.0;
    let mut bt = invert(&p, alpha);
    for xi in 0..alpha {
        let scale = g[xi * r..(xi + 1) * r]
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        g[xi * r..(xi + 1) * r].iter_mut().for_each(|v| *v /= scale);
        bt[xi * alpha..(xi + 1) * alpha]
            .iter_mut()
            .for_each(|v| *v *= scale);
    }
    Plan {
        r,
        alpha,
        bt,
        g,
        at,
    }
}

/// Inverse of an n x n matrix by Gauss-Jordan elimination with partial pivoting.
fn invert(m: &[f64], n: usize) -> Vec<f64> {
    let mut a = m.to_vec();
    let mut inv: Vec<f64> = (0..n * n)
        .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| a[x * n + col].abs().total_cmp(&a[y * n + col].abs()))
            .expect("rows left");
        assert!(a[pivot * n + col].abs() > 1e-12, "invert: singular matrix");
        for k in 0..n {
            a.swap(col * n + k, pivot * n + k);
            inv.swap(col * n + k, pivot * n + k);
        }
        let d = a[col * n + col];
        for k in 0..n {
            a[col * n + k] /= d;
            inv[col * n + k] /= d;
        }
        for row in (0..n).filter(|&row| row != col) {
            let f = a[row * n + col];
            for k in 0..n {
                a[row * n + k] -= f * a[col * n + k];
                inv[row * n + k] -= f * inv[col * n + k];
            }
        }
    }
    inv
}
