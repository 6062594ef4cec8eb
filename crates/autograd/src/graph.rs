//! The graph: values, the nodes that remember how they were made, and `backward`.
//!
//! A [`Var`] is a value plus, when it needs a gradient, a [`Node`]. A node holds
//! only two things: its parents' nodes and a one-shot closure that maps the
//! gradient of its output to the gradients of its inputs. The closure captures
//! exactly the tensors its maths needs (an op decides that when it runs); the
//! node never holds its own output value. So when user code drops an
//! intermediate `Var`, its value is freed unless some backward saved it.
//!
//! `backward()` sorts the nodes reachable from the loss (parents before
//! children), then walks them from the loss down. Each node's closure is
//! *taken* (it runs once; what it captured is freed right after), its gradient
//! leaves the map, and the walk drops its own reference to the node. A second
//! backward through the same nodes finds the closures gone and says so.

use crate::error::{AutogradError, AutogradResult};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tensor::{Element, Tensor};

/// Maps the gradient of an op's output to one gradient per input (`None` where
/// an input needs none).
pub type BackwardFn<T> = Box<dyn FnOnce(&Tensor<T>) -> Vec<Option<Tensor<T>>>>;

/// Where a backward pass adds the gradient of a leaf that outlives its graph
/// (a parameter's gradient slot, shared with the `Param` that owns it).
pub(crate) type GradSlot<T> = Rc<RefCell<Option<Tensor<T>>>>;

/// Add `g` into `slot` in place (the first gradient is copied in).
fn accumulate<T: Element>(slot: &GradSlot<T>, g: &Tensor<T>) {
    let mut slot = slot.borrow_mut();
    match slot.as_mut() {
        Some(acc) => acc.add_assign(g),
        None => *slot = Some(g.to_contiguous()),
    }
}

/// How a value that needs a gradient came to be.
pub(crate) struct Node<T: Element> {
    id: usize,
    name: &'static str,
    parents: RefCell<Vec<Option<Rc<Node<T>>>>>,
    backward: RefCell<Option<BackwardFn<T>>>,
    /// Set on a parameter's leaves: its gradient slot, which receives the gradient.
    slot: Option<GradSlot<T>>,
    is_leaf: bool,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Run `f` with recording switched off (inference): every op in it returns a
/// constant, and nothing is saved for a backward.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

/// True unless inside [`no_grad`].
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// A tensor value in a differentiable computation.
#[derive(Clone)]
pub struct Var<T: Element> {
    value: Tensor<T>,
    node: Option<Rc<Node<T>>>,
}

impl<T: Element> std::fmt::Debug for Var<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = self.node.as_ref().map_or("constant", |n| n.name);
        write!(f, "Var({how}, {:?})", self.value)
    }
}

impl<T: Element> Var<T> {
    /// A value that needs no gradient.
    pub fn constant(value: Tensor<T>) -> Self {
        Var { value, node: None }
    }

    /// A leaf whose gradient [`Var::backward`] reports in its [`Gradients`].
    pub fn leaf(value: Tensor<T>) -> Self {
        Self::make_leaf(value, None)
    }

    pub(crate) fn make_leaf(value: Tensor<T>, slot: Option<GradSlot<T>>) -> Self {
        let node = Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: "leaf",
            parents: RefCell::new(vec![]),
            backward: RefCell::new(None),
            slot,
            is_leaf: true,
        };
        Var {
            value,
            node: Some(Rc::new(node)),
        }
    }

    /// The value.
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    /// Shape of the value.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// True when a gradient flows back through this value.
    pub fn requires_grad(&self) -> bool {
        self.node.is_some()
    }

    /// The same value, cut off from the graph.
    pub fn detach(&self) -> Self {
        Var::constant(self.value.clone())
    }

    /// Record an op: `value` computed from `inputs`, and `backward` mapping the
    /// output gradient to one gradient per input. This is the public way to add
    /// an op (see the crate docs); every built-in op goes through it.
    ///
    /// When recording is off or no input needs a gradient, `backward` is dropped
    /// at once (freeing whatever it captured) and a constant comes back.
    pub fn from_op(
        name: &'static str,
        value: Tensor<T>,
        inputs: &[&Var<T>],
        backward: impl FnOnce(&Tensor<T>) -> Vec<Option<Tensor<T>>> + 'static,
    ) -> Self {
        if !is_grad_enabled() || inputs.iter().all(|v| v.node.is_none()) {
            return Var::constant(value);
        }
        let node = Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            parents: RefCell::new(inputs.iter().map(|v| v.node.clone()).collect()),
            backward: RefCell::new(Some(Box::new(backward))),
            slot: None,
            is_leaf: false,
        };
        Var {
            value,
            node: Some(Rc::new(node)),
        }
    }

    /// Back-propagate from this scalar: accumulate into every parameter's
    /// gradient slot, and return the gradients of the other leaves.
    pub fn backward(&self) -> AutogradResult<Gradients<T>> {
        if self.value.len() != 1 {
            return Err(AutogradError::NotScalar {
                shape: self.shape().to_vec(),
            });
        }
        let root = self.node.clone().ok_or(AutogradError::NoGradient)?;
        let mut order = topological_order(root.clone());
        drop(root);
        let mut grads: HashMap<usize, Tensor<T>> = HashMap::new();
        grads.insert(order.last().expect("root").id, Tensor::ones(self.shape()));
        let mut leaves = Gradients {
            by_id: HashMap::new(),
        };
        while let Some(node) = order.pop() {
            let Some(g) = grads.remove(&node.id) else {
                continue;
            };
            if node.is_leaf {
                match &node.slot {
                    Some(slot) => accumulate(slot, &g),
                    None => leaves.add(node.id, g),
                }
                continue;
            }
            let backward = node
                .backward
                .borrow_mut()
                .take()
                .ok_or(AutogradError::GraphConsumed { op: node.name })?;
            let parents = std::mem::take(&mut *node.parents.borrow_mut());
            let input_grads = backward(&g);
            drop(g);
            debug_assert_eq!(
                input_grads.len(),
                parents.len(),
                "op {} returned the wrong number of gradients",
                node.name
            );
            for (parent, pg) in parents.into_iter().zip(input_grads) {
                if let (Some(p), Some(pg)) = (parent, pg) {
                    match grads.get_mut(&p.id) {
                        Some(acc) => acc.add_assign(&pg),
                        None => {
                            grads.insert(p.id, pg);
                        }
                    }
                }
            }
        }
        Ok(leaves)
    }
}

/// Nodes reachable from `root`, every parent before its children (`root` last).
fn topological_order<T: Element>(root: Rc<Node<T>>) -> Vec<Rc<Node<T>>> {
    let mut order = vec![];
    let mut seen = std::collections::HashSet::new();
    // Iterative post-order DFS: deep networks must not overflow the stack.
    let mut stack = vec![(root, false)];
    while let Some((node, expanded)) = stack.pop() {
        if expanded {
            order.push(node);
            continue;
        }
        if !seen.insert(node.id) {
            continue;
        }
        let parents: Vec<_> = node.parents.borrow().iter().flatten().cloned().collect();
        stack.push((node, true));
        for p in parents {
            if !seen.contains(&p.id) {
                stack.push((p, false));
            }
        }
    }
    order
}

/// Gradients of the non-parameter leaves reached by a backward pass.
pub struct Gradients<T: Element> {
    by_id: HashMap<usize, Tensor<T>>,
}

impl<T: Element> Gradients<T> {
    fn add(&mut self, id: usize, g: Tensor<T>) {
        match self.by_id.get_mut(&id) {
            Some(acc) => acc.add_assign(&g),
            None => {
                self.by_id.insert(id, g);
            }
        }
    }

    /// The gradient of a leaf, if the backward reached it.
    pub fn get(&self, leaf: &Var<T>) -> Option<&Tensor<T>> {
        leaf.node.as_ref().and_then(|n| self.by_id.get(&n.id))
    }
}
