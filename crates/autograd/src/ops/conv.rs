//! Convolution and pooling, on the kernels of `tensor::conv` and `tensor::pool`.

use super::needs;
use crate::Var;
use tensor::conv::grouped::{try_grouped_conv2d, try_grouped_conv2d_backward};
use tensor::conv::{conv2d, conv2d_backward};
use tensor::pool::{max_pool2d, try_avg_pool2d, try_avg_pool2d_backward, try_max_pool2d_backward};
use tensor::{Conv2dParams, Element, Pool2dParams};

impl<T: Element> Var<T> {
    /// 2-D convolution, NCHW, weight `[O, C, kh, kw]`, optional bias `[O]`.
    ///
    /// With col = im2col(x): dW = Σ_n dy_n · col_nᵀ, dx = col2im(Wᵀ · dy_n),
    /// db = Σ_{n,h,w} dy (see `tensor::conv`). Only the requested gradients are computed.
    pub fn conv2d(&self, weight: &Var<T>, bias: Option<&Var<T>>, p: Conv2dParams) -> Var<T> {
        let out = conv2d(self.value(), weight.value(), bias.map(|b| b.value()), p);
        let (x, w) = (self.value().clone(), weight.value().clone());
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let need = needs(&inputs);
        let want_bias = need.get(2).copied().unwrap_or(false);
        Var::from_op("conv2d", out, &inputs, move |g| {
            let grads = conv2d_backward(g, &x, &w, p, (need[0], need[1], want_bias));
            let mut v = vec![grads.input, grads.weight];
            if need.len() == 3 {
                v.push(grads.bias);
            }
            v
        })
    }

    /// Grouped (and depthwise) 2-D convolution, weight `[O, C/groups, kh, kw]`:
    /// the direct kernels of `tensor::conv::grouped`, whose module text has the
    /// maths of all three gradients. Only the requested gradients are computed.
    pub fn conv2d_grouped(
        &self,
        weight: &Var<T>,
        bias: Option<&Var<T>>,
        p: Conv2dParams,
        groups: usize,
    ) -> Var<T> {
        let out = try_grouped_conv2d(
            self.value(),
            weight.value(),
            bias.map(|b| b.value()),
            p,
            groups,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (x, w) = (self.value().clone(), weight.value().clone());
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let need = needs(&inputs);
        let want_bias = need.get(2).copied().unwrap_or(false);
        Var::from_op("conv2d_grouped", out, &inputs, move |g| {
            let grads =
                try_grouped_conv2d_backward(g, &x, &w, p, groups, (need[0], need[1], want_bias))
                    .expect("shapes from the forward");
            let mut v = vec![grads.input, grads.weight];
            if need.len() == 3 {
                v.push(grads.bias);
            }
            v
        })
    }

    /// 2-D max pooling.  dx = g routed to each window's (first) maximum.
    pub fn max_pool2d(&self, p: Pool2dParams) -> Var<T> {
        let (y, idx) = max_pool2d(self.value(), p);
        let shape = self.shape().to_vec();
        Var::from_op("max_pool2d", y, &[self], move |g| {
            vec![Some(
                try_max_pool2d_backward(g, &idx, &shape).expect("shapes from the forward"),
            )]
        })
    }

    /// 2-D average pooling.  dx = g / (kh·kw) spread over each window.
    pub fn avg_pool2d(&self, p: Pool2dParams) -> Var<T> {
        let y = try_avg_pool2d(self.value(), p).unwrap_or_else(|e| panic!("{e}"));
        let shape = self.shape().to_vec();
        Var::from_op("avg_pool2d", y, &[self], move |g| {
            vec![Some(
                try_avg_pool2d_backward(g, &shape, p).expect("shapes from the forward"),
            )]
        })
    }
}
