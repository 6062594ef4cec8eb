//! Gradient checks on random shapes for every loss, the paper's worked example,
//! the λ schedule, and the tiled regularizer against a dense reference.

use approx::assert_abs_diff_eq;
use autograd::{gradcheck, Tolerance, Var};
use facelosses::exclusive::nearest_of_normalised;
use facelosses::{
    a_softmax_loss, arcface_loss, cosface_loss, exclusive_regularizer, nearest_neighbours,
    normface_loss, softmax_loss, ASoftmax, CenterLoss, ExclusiveRegularizer, LambdaSchedule,
    SeparabilityStats,
};
use tensor::{Rng, Tensor};

const SHAPES: &[(usize, usize, usize)] = &[(1, 2, 2), (5, 3, 4), (7, 9, 6)]; // (N, K, C)

fn problem(n: usize, k: usize, c: usize, seed: u64) -> (Tensor<f64>, Tensor<f64>, Vec<usize>) {
    let mut rng = Rng::new(seed);
    let x = Tensor::rand_normal(&[n, k], 0.0, 1.5, &mut rng);
    let w = Tensor::rand_normal(&[c, k], 0.0, 1.0, &mut rng);
    let y = (0..n).map(|_| rng.below(c)).collect();
    (x, w, y)
}

fn check(name: &str, f: impl Fn(&[Var<f64>]) -> Var<f64>, inputs: &[Tensor<f64>]) {
    let r = gradcheck(f, inputs, Tolerance::SMOOTH);
    assert!(r.passed(), "{name}:\n{r}");
}

#[test]
fn gradcheck_classification_losses() {
    for (i, &(n, k, c)) in SHAPES.iter().enumerate() {
        let (x, w, y) = problem(n, k, c, i as u64);
        let b = Tensor::rand_normal(&[c], 0.0, 1.0, &mut Rng::new(99));
        let inputs = [x.clone(), w.clone()];
        check(
            "softmax",
            |v| softmax_loss(&v[0], &v[1], Some(&v[2]), &y),
            &[x.clone(), w.clone(), b],
        );
        for m in 1..=4 {
            for lambda in [0.0, 5.0, 1000.0] {
                check(
                    &format!("a-softmax m={m} λ={lambda}"),
                    |v| a_softmax_loss(&v[0], &v[1], &y, m, lambda),
                    &inputs,
                );
            }
        }
        check(
            "cosface",
            |v| cosface_loss(&v[0], &v[1], &y, 30.0, 0.35),
            &inputs,
        );
        check(
            "arcface",
            |v| arcface_loss(&v[0], &v[1], &y, 30.0, 0.5),
            &inputs,
        );
        check(
            "arcface (fallback region)",
            |v| arcface_loss(&v[0], &v[1], &y, 4.0, 2.5),
            &inputs,
        );
        check(
            "normface",
            |v| normface_loss(&v[0], &v[1], &y, 16.0),
            &inputs,
        );
        let mut center = CenterLoss::new(c, k, 0.5);
        center.centers = w.clone();
        check(
            "center",
            |v| center.loss(&v[0], &y),
            std::slice::from_ref(&x),
        );
    }
}

#[test]
fn gradcheck_exclusive_regularizer() {
    for (c, k) in [(2, 3), (5, 4), (13, 7), (40, 5)] {
        let w = Tensor::rand_normal(&[c, k], 0.0, 1.0, &mut Rng::new(c as u64));
        check("exclusive", |v| exclusive_regularizer(&v[0]).0, &[w]);
    }
}

#[test]
fn gradcheck_exclusive_regularizer_term() {
    // λ_r · L_r through the training-time type, exact and with held neighbours.
    for (c, k) in [(3, 4), (11, 6), (40, 5)] {
        let w = Tensor::rand_normal(&[c, k], 0.0, 1.0, &mut Rng::new(10 + c as u64));
        check(
            "exclusive term (exact)",
            |v| ExclusiveRegularizer::new(0.7, 1).unwrap().forward(&v[0], 3),
            std::slice::from_ref(&w),
        );
        // A search at step 0 fills the cache from other weights; step 1 reuses it.
        let other = Tensor::<f64>::rand_normal(&[c, k], 0.0, 1.0, &mut Rng::new(99));
        let mut held = ExclusiveRegularizer::new(0.7, 4).unwrap();
        held.forward(&Var::leaf(other), 0);
        let cache = held.cache.clone().expect("a search fills the cache");
        check(
            "exclusive term (held neighbours)",
            |v| {
                let mut r = held.clone();
                r.cache = Some(cache.clone());
                r.forward(&v[0], 1)
            },
            &[w],
        );
    }
}

/// The term's value and gradient, as bits, for weights `w` at `step`.
fn term_bits(r: &mut ExclusiveRegularizer, w: &Tensor<f32>, step: u64) -> (u32, Vec<u32>) {
    let leaf = Var::leaf(w.clone());
    let loss = r.forward(&leaf, step);
    let value = loss.value().item().unwrap().to_bits();
    let grad = loss.backward().unwrap().get(&leaf).unwrap().to_vec();
    (value, grad.iter().map(|g| g.to_bits()).collect())
}

#[test]
fn exclusive_term_at_refresh_1_is_the_exact_regularizer_bit_for_bit() {
    let mut r = ExclusiveRegularizer::new(2.0, 1).unwrap();
    let mut rng = Rng::new(5);
    for step in 0..6 {
        let w = Tensor::<f32>::rand_normal(&[37, 16], 0.0, 1.0, &mut rng);
        let leaf = Var::leaf(w.clone());
        let exact = exclusive_regularizer(&leaf).0.mul_scalar(2.0);
        let want_value = exact.value().item().unwrap().to_bits();
        let want_grad: Vec<u32> = exact
            .backward()
            .unwrap()
            .get(&leaf)
            .unwrap()
            .to_vec()
            .iter()
            .map(|g| g.to_bits())
            .collect();
        assert_eq!(
            term_bits(&mut r, &w, step),
            (want_value, want_grad),
            "step {step}"
        );
        assert!(r.cache.is_none(), "the exact term holds nothing");
    }
}

#[test]
fn refreshing_term_searches_on_multiples_of_k_and_holds_in_between() {
    let mut rng = Rng::new(6);
    let ws: Vec<Tensor<f32>> = (0..7)
        .map(|_| Tensor::rand_normal(&[25, 8], 0.0, 1.0, &mut rng))
        .collect();
    let mut r = ExclusiveRegularizer::new(1.5, 3).unwrap();
    for (step, w) in ws.iter().enumerate() {
        let step = step as u64;
        let (value, grad) = term_bits(&mut r, w, step);
        let cache = r.cache.clone().unwrap();
        assert_eq!(cache.computed_at, step - step % 3, "step {step}");
        assert_eq!(
            cache.nearest,
            nearest_neighbours(&ws[(step - step % 3) as usize]).nearest
        );
        // A copy restored from the cache (as a resumed run is) gives the same bits.
        let mut restored = ExclusiveRegularizer::new(1.5, 3).unwrap();
        restored.cache = Some(cache);
        assert_eq!(
            term_bits(&mut restored, w, step),
            (value, grad.clone()),
            "step {step}"
        );
        // With held neighbours equal to the current nearest, the value is the exact L_r.
        if step.is_multiple_of(3) {
            let exact = exclusive_regularizer(&Var::leaf(w.clone()))
                .0
                .value()
                .item()
                .unwrap();
            assert_abs_diff_eq!(f32::from_bits(value), 1.5 * exact, epsilon = 1e-5);
        }
    }
    assert!(ExclusiveRegularizer::new(0.0, 1)
        .unwrap_err()
        .contains("positive"));
    assert!(ExclusiveRegularizer::new(1.0, 0)
        .unwrap_err()
        .contains("at least 1"));
}

#[test]
fn worked_example_from_the_issue() {
    let w = Tensor::<f64>::from_vec(
        &[4, 3],
        vec![1., 0., 0., 0.6, 0.8, 0., 0., 0.6, 0.8, -1., 0., 0.],
    )
    .unwrap();
    let leaf = Var::leaf(w.clone());
    let (loss, nn) = exclusive_regularizer(&leaf);
    assert_abs_diff_eq!(loss.value().item().unwrap(), 0.42, epsilon = 1e-12);
    assert_eq!(nn.nearest, vec![1, 0, 1, 2]);
    for (s, want) in nn.sep.iter().zip([0.6, 0.6, 0.48, 0.0]) {
        assert_abs_diff_eq!(*s, want, epsilon = 1e-12);
    }
    let stats = SeparabilityStats::from_values(&nn.sep, 10);
    assert_abs_diff_eq!(stats.std, 0.247386, epsilon = 1e-6);
    assert_eq!((stats.min, stats.max), (0.0, 0.6));
    assert_eq!(stats.histogram.iter().sum::<usize>(), 4);
    let g = loss.backward().unwrap().get(&leaf).unwrap().clone();
    let want = [
        [0., 0.4, 0.],
        [0.248, -0.186, 0.2],
        [-0.1, 0.128, -0.096],
        [0., 0.15, 0.2],
    ];
    for (i, want_row) in want.iter().enumerate() {
        let row: Vec<f64> = g.slice_axis(0, i, i + 1).to_vec();
        for (got, w) in row.iter().zip(want_row) {
            assert_abs_diff_eq!(*got, *w, epsilon = 1e-12);
        }
        let dot: f64 = row
            .iter()
            .zip(w.slice_axis(0, i, i + 1).to_vec())
            .map(|(a, b)| a * b)
            .sum();
        assert_abs_diff_eq!(dot, 0.0, epsilon = 1e-12); // orthogonal to its row
    }
}

#[test]
fn lambda_schedule_defaults() {
    let s = LambdaSchedule::SPHEREFACE;
    for (it, want) in [
        (1, 892.857),
        (10, 454.545),
        (100, 76.923),
        (1000, 8.264),
        (1659, 5.0),
    ] {
        assert_abs_diff_eq!(s.lambda_at(it), want, epsilon = 1e-3);
    }
    let other = LambdaSchedule {
        base: 1500.0,
        gamma: 0.1,
        power: 5.0,
        lambda_min: 5.0,
    };
    assert_abs_diff_eq!(other.lambda_at(1), 1500.0 / 1.1f64.powi(5), epsilon = 1e-9);
    // The counter moves before each forward.
    let mut a = ASoftmax::new(4).unwrap();
    let (x, w, y) = problem(3, 4, 5, 1);
    a.forward(&Var::constant(x), &Var::constant(w), &y);
    assert_eq!(a.iteration, 1);
    assert_abs_diff_eq!(a.lambda(), 892.857, epsilon = 1e-3);
    assert!(ASoftmax::new(7).unwrap_err().contains("m = 7"));
}

/// Dense reference: the full cosine matrix, row max over j ≠ i, lowest index on ties.
fn dense_nearest(w: &Tensor<f64>) -> (Vec<usize>, Vec<f64>) {
    let hat = w.l2_normalize(1, 1e-12);
    let cos = hat.matmul(&hat.t());
    let c = w.shape()[0];
    (0..c)
        .map(|i| {
            let mut best = (usize::MAX, f64::NEG_INFINITY);
            for j in (0..c).filter(|&j| j != i) {
                let v = cos.get(&[i, j]).unwrap();
                if v > best.1 {
                    best = (j, v);
                }
            }
            best
        })
        .unzip()
}

#[test]
fn tiled_regularizer_equals_dense_reference() {
    for (c, k, tile) in [
        (2, 3, 256),
        (37, 8, 5),
        (300, 16, 256),
        (257, 12, 64),
        (100, 4, 7),
    ] {
        let w = Tensor::<f64>::rand_normal(&[c, k], 0.0, 1.0, &mut Rng::new(c as u64 + 7));
        let (nearest, sep) = dense_nearest(&w);
        let hat = w.l2_normalize(1, 1e-12);
        let tiled = nearest_of_normalised(hat.as_slice().unwrap(), c, k, tile);
        assert_eq!(tiled.nearest, nearest, "C={c} tile={tile}");
        for (a, b) in tiled.sep.iter().zip(&sep) {
            assert_abs_diff_eq!(*a, *b, epsilon = 1e-12);
        }
        assert_eq!(nearest_neighbours(&w).nearest, nearest);
    }
}

#[test]
fn ties_go_to_the_lowest_index() {
    // Rows 1, 2 and 3 are identical; row 0 is equally close to all of them.
    let w = Tensor::<f64>::from_vec(&[4, 2], vec![1., 0., 0., 1., 0., 1., 0., 1.]).unwrap();
    for tile in [1, 2, 3, 256] {
        let hat = w.l2_normalize(1, 1e-12);
        let nn = nearest_of_normalised(hat.as_slice().unwrap(), 4, 2, tile);
        assert_eq!(nn.nearest, vec![1, 2, 1, 1], "tile {tile}");
    }
}

#[test]
fn f32_regularizer_matches_f64() {
    let w = Tensor::<f64>::rand_normal(&[500, 32], 0.0, 1.0, &mut Rng::new(3));
    let (l64, n64) = exclusive_regularizer(&Var::leaf(w.clone()));
    let (l32, n32) = exclusive_regularizer(&Var::leaf(w.cast::<f32>()));
    assert_abs_diff_eq!(
        l64.value().item().unwrap(),
        l32.value().item().unwrap() as f64,
        epsilon = 1e-5
    );
    let agree = n64
        .nearest
        .iter()
        .zip(&n32.nearest)
        .filter(|(a, b)| a == b)
        .count();
    assert!(agree >= 495, "nearest neighbours agree on {agree} of 500");
}

#[test]
#[should_panic(expected = "label 5 at row 1 is out of range for 5 classes")]
fn bad_labels_are_named() {
    let (x, w, _) = problem(2, 3, 5, 0);
    softmax_loss(&Var::constant(x), &Var::constant(w), None, &[0, 5]);
}

#[test]
#[should_panic(expected = "feature size 3 of x [2, 3] differs from 4 of W [5, 4]")]
fn feature_size_mismatch_is_named() {
    let x = Tensor::<f64>::zeros(&[2, 3]);
    let w = Tensor::<f64>::zeros(&[5, 4]);
    a_softmax_loss(&Var::constant(x), &Var::constant(w), &[0, 1], 4, 5.0);
}

#[test]
fn center_update_moves_centers_towards_features() {
    let mut center = CenterLoss::<f64>::new(3, 2, 0.5);
    let x = Tensor::from_vec(&[3, 2], vec![1., 1., 3., 3., -2., 0.]).unwrap();
    center.update_centers(&x, &[0, 0, 2]);
    // Δc_0 = ((0-1) + (0-3)) / 3 per coordinate; c_0 = 0 - 0.5 · Δc_0 = 2/3.
    assert_eq!(
        center.centers.to_vec(),
        vec![2. / 3., 2. / 3., 0., 0., -0.5, 0.]
    );
}
