//! The layers. Each holds its parameters as [`Param`]s named like PyTorch's
//! (`weight`, `bias`). BatchNorm and its folding are in `batchnorm`.

use crate::batchnorm::{inference_affine, Foldable, FoldedSlot};
use crate::init;
use crate::module::{join, Module, TensorKind};
use crate::onnx::{Attr, ExportResult, OnnxGraph};
use autograd::{Param, Var};
use std::cell::{Cell, RefCell};
use tensor::{Conv2dParams, Element, Pool2dParams, Rng, Tensor};

/// 2-D convolution, weight `[O, C, kh, kw]` (OIHW, as PyTorch), optional bias `[O]`.
pub struct Conv2d<T: Element> {
    /// The kernel.
    pub weight: Param<T>,
    /// The bias, if any.
    pub bias: Option<Param<T>>,
    /// Stride and padding.
    pub params: Conv2dParams,
    /// Channel groups (1: dense; the input channels: depthwise). The weight is
    /// `[O, C/groups, kh, kw]`, as PyTorch's.
    pub groups: usize,
    folded: FoldedSlot<T>,
}

impl<T: Element> Conv2d<T> {
    /// A convolution from given tensors.
    pub fn from_tensors(weight: Tensor<T>, bias: Option<Tensor<T>>, params: Conv2dParams) -> Self {
        Conv2d {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
            params,
            groups: 1,
            folded: RefCell::new(None),
        }
    }

    /// `in_ch → out_ch` with a square kernel, Xavier-uniform weight and zero bias.
    pub fn xavier(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Self {
        let w = init::xavier_uniform(&[out_ch, in_ch, kernel, kernel], rng);
        Self::from_tensors(
            w,
            bias.then(|| Tensor::zeros(&[out_ch])),
            Conv2dParams::new(stride, padding),
        )
    }
}

impl<T: Element> Module<T> for Conv2d<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let (w, b) = match &*self.folded.borrow() {
            Some((w, b)) => (Var::constant(w.clone()), Some(Var::constant(b.clone()))),
            None => (self.weight.var(), self.bias.as_ref().map(|b| b.var())),
        };
        if self.groups == 1 {
            x.conv2d(&w, b.as_ref(), self.params)
        } else {
            x.conv2d_grouped(&w, b.as_ref(), self.params, self.groups)
        }
    }
    fn set_training(&self, training: bool) {
        if training {
            self.folded.replace(None);
        }
    }
    fn as_foldable(&self) -> Option<&dyn Foldable<T>> {
        Some(self)
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        let (w, b) = inference_affine(&self.folded, self);
        let wn = g.constant(&join(prefix, "weight"), &w, w.shape());
        let bn = b.map(|b| g.constant(&join(prefix, "bias"), &b, &[b.len()]));
        let mut inputs = vec![x, wn.as_str()];
        inputs.extend(bn.as_deref());
        let p = self.params;
        let attrs = [
            Attr::Ints(
                "kernel_shape",
                vec![w.shape()[2] as i64, w.shape()[3] as i64],
            ),
            Attr::Ints("strides", vec![p.stride.0 as i64, p.stride.1 as i64]),
            Attr::Ints(
                "pads",
                vec![
                    p.padding.0 as i64,
                    p.padding.1 as i64,
                    p.padding.0 as i64,
                    p.padding.1 as i64,
                ],
            ),
            Attr::Int("group", self.groups as i64),
        ];
        Ok(g.node("Conv", &inputs, &attrs, prefix, 4))
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        f(join(prefix, "weight"), &self.weight, TensorKind::Parameter);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b, TensorKind::Parameter);
        }
    }
}

impl<T: Element> Foldable<T> for Conv2d<T> {
    fn affine(&self) -> (Tensor<T>, Option<Tensor<T>>) {
        (
            self.weight.value().clone(),
            self.bias.as_ref().map(|b| b.value().clone()),
        )
    }
    fn set_folded(&self, folded: Option<(Tensor<T>, Tensor<T>)>) {
        self.folded.replace(folded);
    }
}

/// Fully connected layer `y = x Wᵀ + b`, weight `[out, in]` (as PyTorch).
pub struct Linear<T: Element> {
    /// `[out, in]`.
    pub weight: Param<T>,
    /// `[out]`, if any.
    pub bias: Option<Param<T>>,
    folded: FoldedSlot<T>,
}

impl<T: Element> Linear<T> {
    /// A linear layer from given tensors.
    pub fn from_tensors(weight: Tensor<T>, bias: Option<Tensor<T>>) -> Self {
        Linear {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
            folded: RefCell::new(None),
        }
    }

    /// Xavier-uniform weight, zero bias.
    pub fn xavier(inputs: usize, outputs: usize, bias: bool, rng: &mut Rng) -> Self {
        Self::from_tensors(
            init::xavier_uniform(&[outputs, inputs], rng),
            bias.then(|| Tensor::zeros(&[outputs])),
        )
    }
}

impl<T: Element> Foldable<T> for Linear<T> {
    fn affine(&self) -> (Tensor<T>, Option<Tensor<T>>) {
        (
            self.weight.value().clone(),
            self.bias.as_ref().map(|b| b.value().clone()),
        )
    }
    fn set_folded(&self, folded: Option<(Tensor<T>, Tensor<T>)>) {
        self.folded.replace(folded);
    }
}

impl<T: Element> Module<T> for Linear<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let (w, b) = match &*self.folded.borrow() {
            Some((w, b)) => (Var::constant(w.clone()), Some(Var::constant(b.clone()))),
            None => (self.weight.var(), self.bias.as_ref().map(|b| b.var())),
        };
        assert!(
            x.shape().len() == 2 && x.shape()[1] == w.shape()[1],
            "Linear: input {:?} does not fit weight {:?} (needs [N, {}])",
            x.shape(),
            w.shape(),
            w.shape()[1]
        );
        let y = x.matmul(&w.t());
        match b {
            Some(b) => y.add(&b),
            None => y,
        }
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        f(join(prefix, "weight"), &self.weight, TensorKind::Parameter);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b, TensorKind::Parameter);
        }
    }
    fn set_training(&self, training: bool) {
        if training {
            self.folded.replace(None);
        }
    }
    fn as_foldable(&self) -> Option<&dyn Foldable<T>> {
        Some(self)
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        let (w, b) = inference_affine(&self.folded, self);
        let out = w.shape()[0];
        // Gemm: Y = X Wᵀ + C; a layer without bias gets C = 0.
        let b = b.unwrap_or_else(|| Tensor::zeros(&[out]));
        let wn = g.constant(&join(prefix, "weight"), &w, w.shape());
        let bn = g.constant(&join(prefix, "bias"), &b, &[out]);
        Ok(g.node("Gemm", &[x, &wn, &bn], &[Attr::Int("transB", 1)], prefix, 2))
    }
}

/// PReLU with one slope per channel (axis 1), initialised to 0.25; named `weight` as in PyTorch.
pub struct PRelu<T: Element> {
    /// `[channels]`.
    pub weight: Param<T>,
}

impl<T: Element> PRelu<T> {
    /// `channels` slopes of 0.25.
    pub fn new(channels: usize) -> Self {
        PRelu {
            weight: Param::new(Tensor::full(&[channels], T::from_f64_lossy(0.25))),
        }
    }
}

impl<T: Element> Module<T> for PRelu<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        x.prelu(&self.weight.var())
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        f(join(prefix, "weight"), &self.weight, TensorKind::Parameter);
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        // The slope broadcasts from the right: [C, 1, 1] against [N, C, H, W].
        let rank = g.rank(x);
        let c = self.weight.len();
        let mut dims = vec![c];
        dims.resize(rank.max(2) - 1, 1);
        let slope = g.constant(&join(prefix, "weight"), &self.weight.value(), &dims);
        Ok(g.node("PRelu", &[x, &slope], &[], prefix, rank))
    }
}

/// 2-D max pooling.
pub struct MaxPool2d(pub Pool2dParams);

/// ONNX attributes of a pooling window.
fn pool_attrs(p: Pool2dParams) -> Vec<Attr> {
    vec![
        Attr::Ints("kernel_shape", vec![p.kernel.0 as i64, p.kernel.1 as i64]),
        Attr::Ints("strides", vec![p.stride.0 as i64, p.stride.1 as i64]),
        Attr::Ints(
            "pads",
            vec![
                p.padding.0 as i64,
                p.padding.1 as i64,
                p.padding.0 as i64,
                p.padding.1 as i64,
            ],
        ),
    ]
}

impl<T: Element> Module<T> for MaxPool2d {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        x.max_pool2d(self.0)
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Param<T>, TensorKind)) {}
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        Ok(g.node("MaxPool", &[x], &pool_attrs(self.0), prefix, 4))
    }
}

/// 2-D average pooling.
pub struct AvgPool2d(pub Pool2dParams);

impl<T: Element> Module<T> for AvgPool2d {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        x.avg_pool2d(self.0)
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Param<T>, TensorKind)) {}
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        if self.0.padding != (0, 0) {
            return Err(format!(
                "`{prefix}`: padded average pooling has no ONNX export here"
            ));
        }
        Ok(g.node("AveragePool", &[x], &pool_attrs(self.0), prefix, 4))
    }
}

/// `[N, ...]` to `[N, rest]`.
pub struct Flatten;

impl<T: Element> Module<T> for Flatten {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let n = x.shape()[0];
        let rest = x.shape()[1..].iter().product();
        x.reshape(&[n, rest])
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Param<T>, TensorKind)) {}
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        Ok(g.flatten(x, prefix))
    }
}

/// Inverted dropout with its own seeded generator; the identity in evaluation mode.
pub struct Dropout {
    /// Probability of zeroing an element.
    pub p: f64,
    rng: RefCell<Rng>,
    training: Cell<bool>,
}

impl Dropout {
    /// Dropout with probability `p`, its masks drawn from `seed`.
    pub fn new(p: f64, seed: u64) -> Self {
        assert!(
            (0.0..1.0).contains(&p),
            "Dropout: probability {p} must lie in [0, 1)"
        );
        Dropout {
            p,
            rng: RefCell::new(Rng::new(seed)),
            training: Cell::new(true),
        }
    }
}

impl<T: Element> Module<T> for Dropout {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        x.dropout(self.p, self.training.get(), &mut self.rng.borrow_mut())
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Param<T>, TensorKind)) {}
    fn set_training(&self, training: bool) {
        self.training.set(training);
    }
    fn export_onnx(&self, _: &str, _: &mut OnnxGraph, x: &str) -> ExportResult {
        Ok(x.to_string()) // the identity at inference
    }
}

/// SphereFace's residual unit: `x + PReLU(conv2(PReLU(conv1(x))))`, 3x3 convs,
/// stride 1, padding 1, identity skip, no batch norm.
pub struct ResidualUnit<T: Element> {
    /// First 3x3 convolution.
    pub conv1: Conv2d<T>,
    /// Its PReLU.
    pub prelu1: PRelu<T>,
    /// Second 3x3 convolution.
    pub conv2: Conv2d<T>,
    /// Its PReLU.
    pub prelu2: PRelu<T>,
}

impl<T: Element> ResidualUnit<T> {
    /// SphereFace's init: Gaussian σ = 0.01 weights, zero biases.
    pub fn new(channels: usize, rng: &mut Rng) -> Self {
        let conv = |rng: &mut Rng| {
            Conv2d::from_tensors(
                init::gaussian(&[channels, channels, 3, 3], 0.01, rng),
                Some(Tensor::zeros(&[channels])),
                Conv2dParams::new(1, 1),
            )
        };
        ResidualUnit {
            conv1: conv(rng),
            prelu1: PRelu::new(channels),
            conv2: conv(rng),
            prelu2: PRelu::new(channels),
        }
    }
}

impl<T: Element> Module<T> for ResidualUnit<T> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        let h = self.prelu1.forward(&self.conv1.forward(x));
        x.add(&self.prelu2.forward(&self.conv2.forward(&h)))
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<T>, TensorKind)) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.prelu1.visit(&join(prefix, "prelu1"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        self.prelu2.visit(&join(prefix, "prelu2"), f);
    }
    fn export_onnx(&self, prefix: &str, g: &mut OnnxGraph, x: &str) -> ExportResult {
        let h = self.conv1.export_onnx(&join(prefix, "conv1"), g, x)?;
        let h = self.prelu1.export_onnx(&join(prefix, "prelu1"), g, &h)?;
        let h = self.conv2.export_onnx(&join(prefix, "conv2"), g, &h)?;
        let h = self.prelu2.export_onnx(&join(prefix, "prelu2"), g, &h)?;
        Ok(g.node("Add", &[x, &h], &[], &join(prefix, "add"), 4))
    }
}
