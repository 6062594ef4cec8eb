//! The process's compute back end: every environment switch, read once, and
//! the one description of it that benchmarks print and `regularface info`
//! shows.
//!
//! | variable | effect |
//! |---|---|
//! | `REGULARFACE_NO_SIMD` (any value) | the portable copy of every elementwise kernel, not AVX2+FMA |
//! | `REGULARFACE_GEMM=matrixmultiply` | `matrixmultiply` for f32 GEMM even where our AVX-512 kernel could run |
//! | `REGULARFACE_CONV=im2col` / `winograd` | im2col everywhere / Winograd on every 3x3 and 5x5 stride-1 layer |
//!
//! The switches exist so that the paths other CPUs take (AVX2-only laptops,
//! ARM) can be tested and measured on this one; they are read on first use,
//! and changing them later in the process has no effect.

use std::sync::OnceLock;

/// The instruction-set level the elementwise kernels run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimdLevel {
    /// AVX2 and FMA detected at run time (x86-64).
    Avx2Fma,
    /// The portable build of each kernel.
    Portable,
}

/// Which convolution algorithm `REGULARFACE_CONV` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvMode {
    /// Winograd where it applies (3x3 / 5x5 stride 1, 16+ channels), im2col elsewhere.
    Auto,
    /// im2col + GEMM everywhere (`REGULARFACE_CONV=im2col`): the reference path.
    Im2col,
    /// Winograd on every 3x3 / 5x5 stride-1 layer (`REGULARFACE_CONV=winograd`).
    Winograd,
}

/// The back end this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// Elementwise kernels' level.
    pub simd: SimdLevel,
    /// Our AVX-512 f32 GEMM kernel is used (else `matrixmultiply`).
    pub avx512_gemm: bool,
    /// Convolution algorithm choice.
    pub conv: ConvMode,
}

fn detect(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match feature {
            "sse4.2" => is_x86_feature_detected!("sse4.2"),
            "avx" => is_x86_feature_detected!("avx"),
            "avx2" => is_x86_feature_detected!("avx2"),
            "fma" => is_x86_feature_detected!("fma"),
            "avx512f" => is_x86_feature_detected!("avx512f"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

/// The back end, from the CPU and the environment (computed once).
pub fn get() -> Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    *BACKEND.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok();
        let simd = if var("REGULARFACE_NO_SIMD").is_none() && detect("avx2") && detect("fma") {
            SimdLevel::Avx2Fma
        } else {
            SimdLevel::Portable
        };
        let avx512_gemm =
            var("REGULARFACE_GEMM").is_none_or(|v| v != "matrixmultiply") && detect("avx512f");
        let conv = match var("REGULARFACE_CONV") {
            Some(v) if v.eq_ignore_ascii_case("im2col") => ConvMode::Im2col,
            Some(v) if v.eq_ignore_ascii_case("winograd") => ConvMode::Winograd,
            _ => ConvMode::Auto,
        };
        Backend {
            simd,
            avx512_gemm,
            conv,
        }
    })
}

/// The CPU features seen, in one line.
pub fn cpu_features() -> String {
    let seen: Vec<&str> = ["sse4.2", "avx", "avx2", "fma", "avx512f"]
        .into_iter()
        .filter(|f| detect(f))
        .collect();
    if seen.is_empty() {
        std::env::consts::ARCH.to_string()
    } else {
        seen.join(" ")
    }
}

/// The convolution algorithms in use, in words.
pub fn conv_description() -> &'static str {
    match get().conv {
        ConvMode::Im2col => "im2col everywhere (REGULARFACE_CONV=im2col)",
        ConvMode::Winograd => {
            "Winograd F(2x2,3x3) / F(2x2,5x5) for every 3x3 / 5x5 stride-1 layer \
             (REGULARFACE_CONV=winograd)"
        }
        ConvMode::Auto => {
            "Winograd F(2x2,3x3) / F(2x2,5x5) on 3x3 / 5x5 stride-1 layers with 16+ channels \
             (else im2col)"
        }
    }
}

/// Everything a benchmark header or a bug report needs: threads, CPU
/// features, kernel level, GEMM kernel, convolution algorithm and build.
pub fn describe() -> String {
    let b = get();
    format!(
        "threads {} (rayon), cpu {} (kernels: {:?}; f32 GEMM: {}), conv: {}, {} build, target-cpu {}",
        rayon::current_num_threads(),
        cpu_features(),
        b.simd,
        if b.avx512_gemm {
            "own AVX-512 8x32"
        } else {
            "matrixmultiply"
        },
        conv_description(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        if cfg!(target_feature = "avx2") {
            "native"
        } else {
            "generic (kernels dispatched at run time)"
        },
    )
}
