//! One robust random cut tree (Guha, Mishra, Roy and Schrijvers, ICML 2016) over points kept
//! in a store shared by the forest's trees.
//!
//! A node's cut is drawn on its bounding box: a dimension with probability proportional to
//! its side, then a value uniform along that side. A point is inserted top-down (the paper's
//! `InsertPoint`): at each node a cut is drawn on the box grown to hold the point; if it
//! falls outside the old box, it separates the point from everything below, and a new node
//! with that cut takes the subtree's place; otherwise the point follows the node's own cut.
//! The result is distributed as a tree built on the grown set from scratch. Deleting a point
//! replaces its leaf's parent by the leaf's sibling. Equal points share a leaf with a mass.
//!
//! ```text
//!            [cut x <= 4.2]               a point goes left when its value in the
//!            /            \               cut's dimension is at most the cut
//!     [cut y <= 1.0]     leaf(7.0, 2.0)
//!      /        \
//!  leaf(1,0)  leaf(2,3) x2                (a leaf of mass 2: the point was seen twice)
//! ```
//!
//! Scores follow the AWS random cut forest library's scalar score (the scale Kinesis Data
//! Analytics reported: about 1 for ordinary points, several for outliers): a query walks
//! from the root to the leaf its values reach, then back up, mixing at each node the chance
//! that a random cut of the node's box grown by the query would have isolated it there.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

const NONE: u32 = u32::MAX;

/// The points of a forest, stored once however many trees hold them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PointStore {
    dim: usize,
    values: Vec<f64>,
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl PointStore {
    /// A store of points with `dim` values each.
    pub fn new(dim: usize) -> Self {
        PointStore {
            dim,
            ..Default::default()
        }
    }

    /// The point at `index`.
    pub fn point(&self, index: u32) -> &[f64] {
        let i = index as usize * self.dim;
        &self.values[i..i + self.dim]
    }

    /// Stores a point; it is dropped when no sample holds it (see [`PointStore::release`]).
    pub fn add(&mut self, point: &[f64]) -> u32 {
        match self.free.pop() {
            Some(i) => {
                let at = i as usize * self.dim;
                self.values[at..at + self.dim].copy_from_slice(point);
                i
            }
            None => {
                self.values.extend_from_slice(point);
                self.refs.push(0);
                (self.refs.len() - 1) as u32
            }
        }
    }

    /// One more sample holds the point.
    pub fn hold(&mut self, index: u32) {
        self.refs[index as usize] += 1;
    }

    /// One sample fewer holds the point; it is freed when none does.
    pub fn release(&mut self, index: u32) {
        let r = &mut self.refs[index as usize];
        *r = r.saturating_sub(1);
        if *r == 0 {
            self.free.push(index);
        }
    }

    /// Frees a point no sample took.
    pub fn discard_if_unheld(&mut self, index: u32) {
        if self.refs[index as usize] == 0 {
            self.free.push(index);
        }
    }

    /// Points held now.
    pub fn len(&self) -> usize {
        self.refs.len() - self.free.len()
    }

    /// Whether no point is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory the store holds.
    pub fn bytes(&self) -> usize {
        self.values.capacity() * 8 + self.refs.capacity() * 4 + self.free.capacity() * 4
    }
}

/// A node: an internal node's cut and children, or a leaf, whose children are itself and
/// whose cut (+inf) sends every point left, so a descent that reaches it stays there
/// without a branch. 16 bytes, four to a cache line; the cut's dimension and the parent
/// link live beside, in the tree's `dims` and `parents`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Node {
    cut: f64,
    left: u32,
    right: u32,
}

impl Node {
    /// A leaf at `index`.
    fn leaf(index: u32) -> Node {
        Node {
            cut: f64::INFINITY,
            left: index,
            right: index,
        }
    }

    fn is_leaf(&self) -> bool {
        self.left == self.right
    }

    /// The child a point whose value in the cut's dimension is `v` goes to, chosen without
    /// a branch (a descent's turns are as random as the data, so a branch would be
    /// mispredicted half the time).
    #[inline]
    fn child(&self, v: f64) -> u32 {
        let right = (v > self.cut) as u32;
        let mask = right.wrapping_neg();
        (self.left & !mask) | (self.right & mask)
    }
}

/// A random cut tree.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tree {
    dim: usize,
    nodes: Vec<Node>,
    /// Points below each node (a leaf: how many times its point was inserted).
    mass: Vec<u32>,
    /// A leaf's point in the store.
    points: Vec<u32>,
    /// An internal node's cut dimension.
    dims: Vec<u32>,
    /// Each node's parent (`NONE` at the root).
    parents: Vec<u32>,
    free: Vec<u32>,
    /// Per internal node: its box, `dim` minimums then `dim` maximums.
    boxes: Vec<f64>,
    root: u32,
    rng: Rng,
    #[serde(skip)]
    scratch: Vec<f64>,
}

/// A node's box: stored for an internal node, its point for a leaf.
fn bounds<'a>(tree: &'a Tree, store: &'a PointStore, n: u32) -> (&'a [f64], &'a [f64]) {
    leaf_or_box(&tree.nodes, &tree.points, &tree.boxes, tree.dim, store, n)
}

/// [`bounds`] from the tree's parts (so the generator can be borrowed beside it).
fn leaf_or_box<'a>(
    nodes: &[Node],
    points: &[u32],
    boxes: &'a [f64],
    dim: usize,
    store: &'a PointStore,
    n: u32,
) -> (&'a [f64], &'a [f64]) {
    let node = nodes[n as usize];
    if node.is_leaf() {
        let p = store.point(points[n as usize]);
        (p, p)
    } else {
        let at = n as usize * 2 * dim;
        (&boxes[at..at + dim], &boxes[at + dim..at + 2 * dim])
    }
}

/// A cut of the box `[min, max]` grown to hold `x`: a dimension chosen with probability
/// proportional to its side, a value uniform in `[lo, hi)` along it.
fn draw_cut(rng: &mut Rng, min: &[f64], max: &[f64], x: &[f64]) -> (usize, f64) {
    let mut total = 0.0;
    for i in 0..x.len() {
        total += max[i].max(x[i]) - min[i].min(x[i]);
    }
    let mut r = rng.uniform() * total;
    let mut last = 0;
    for i in 0..x.len() {
        let (lo, hi) = (min[i].min(x[i]), max[i].max(x[i]));
        let side = hi - lo;
        if side <= 0.0 {
            continue;
        }
        last = i;
        if r < side {
            return (i, (lo + r).min(hi.next_down()));
        }
        r -= side;
    }
    // Rounding left r at the very end: the top of the last side that has one.
    (last, max[last].max(x[last]).next_down())
}

/// Per-dimension parts of a score: how much comes from the point being below (`low`) or
/// above (`high`) the rest in each dimension. They add up to the score.
#[derive(Clone, Debug, PartialEq)]
pub struct DiVector {
    /// Below the others, per dimension.
    pub low: Vec<f64>,
    /// Above the others, per dimension.
    pub high: Vec<f64>,
}

impl DiVector {
    /// Zeros over `dim` dimensions.
    pub fn zeros(dim: usize) -> Self {
        DiVector {
            low: vec![0.0; dim],
            high: vec![0.0; dim],
        }
    }

    /// The sum of every part.
    pub fn total(&self) -> f64 {
        self.low.iter().sum::<f64>() + self.high.iter().sum::<f64>()
    }

    fn scale(&mut self, by: f64) {
        self.low.iter_mut().for_each(|v| *v *= by);
        self.high.iter_mut().for_each(|v| *v *= by);
    }

    /// Adds `other` times `by`.
    pub fn add_scaled(&mut self, other: &DiVector, by: f64) {
        for (a, b) in self.low.iter_mut().zip(&other.low) {
            *a += b * by;
        }
        for (a, b) in self.high.iter_mut().zip(&other.high) {
            *a += b * by;
        }
    }

    /// Scaled to add up to `total` (spread evenly when every part is 0).
    fn normalize(&mut self, total: f64) {
        let sum = self.total();
        if sum > 0.0 {
            self.scale(total / sum);
        } else {
            let each = total / (2 * self.low.len().max(1)) as f64;
            self.low.iter_mut().for_each(|v| *v = each);
            self.high.iter_mut().for_each(|v| *v = each);
        }
    }
}

/// The score of a leaf that does not hold the query, at `depth`.
fn score_unseen(depth: usize) -> f64 {
    1.0 / (depth as f64 + 1.0)
}

/// The score of a leaf holding the query `mass` times, at `depth`.
fn score_seen(depth: usize, mass: u32) -> f64 {
    1.0 / (depth as f64 + (1.0 + mass as f64).log2())
}

/// Down-weights a query that is already in the sample many times.
fn damp(mass: u32, tree_mass: u32) -> f64 {
    1.0 - mass as f64 / (2.0 * tree_mass as f64)
}

/// Brings a tree's score to a scale where ordinary points score about 1.
fn normalizer(score: f64, tree_mass: u32) -> f64 {
    score * (1.0 + tree_mass as f64).log2()
}

/// The chance that a random cut of `[min, max]` grown to hold `x` separates `x`, split by
/// dimension and side into `into` (when given); returns the total.
fn cut_probability(min: &[f64], max: &[f64], x: &[f64], into: Option<&mut DiVector>) -> f64 {
    let mut range = 0.0;
    let mut outside = 0.0;
    for i in 0..x.len() {
        let (lo, hi) = (min[i].min(x[i]), max[i].max(x[i]));
        range += hi - lo;
        outside += (min[i] - x[i]).max(0.0) + (x[i] - max[i]).max(0.0);
    }
    if range <= 0.0 {
        if let Some(d) = into {
            d.scale(0.0);
        }
        return 0.0;
    }
    if let Some(d) = into {
        for i in 0..x.len() {
            d.low[i] = (min[i] - x[i]).max(0.0) / range;
            d.high[i] = (x[i] - max[i]).max(0.0) / range;
        }
    }
    outside / range
}

impl Tree {
    /// An empty tree over points of `dim` values, drawing its cuts from `rng`.
    pub fn new(dim: usize, rng: Rng) -> Self {
        Tree {
            dim,
            nodes: Vec::new(),
            mass: Vec::new(),
            points: Vec::new(),
            dims: Vec::new(),
            parents: Vec::new(),
            free: Vec::new(),
            boxes: Vec::new(),
            root: NONE,
            rng,
            scratch: Vec::new(),
        }
    }

    /// The tree's generator (the forest's sampler draws from it too).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Points held, counting repeats.
    pub fn mass(&self) -> u32 {
        if self.root == NONE {
            0
        } else {
            self.mass[self.root as usize]
        }
    }

    /// Bytes of memory the tree holds.
    pub fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.mass.capacity() * 4
            + (self.points.capacity() + self.dims.capacity() + self.parents.capacity()) * 4
            + self.boxes.capacity() * 8
            + self.free.capacity() * 4
    }

    /// A slot for `node` cutting `dim` (None: a leaf of `point`, made to point at itself),
    /// under `parent`.
    fn alloc(&mut self, node: Option<(Node, u32)>, mass: u32, point: u32, parent: u32) -> u32 {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.nodes.push(Node::leaf(0));
                self.mass.push(0);
                self.points.push(NONE);
                self.dims.push(0);
                self.parents.push(NONE);
                self.boxes.resize(self.nodes.len() * 2 * self.dim, 0.0);
                (self.nodes.len() - 1) as u32
            }
        };
        let (node, dim) = node.unwrap_or_else(|| (Node::leaf(i), 0));
        self.nodes[i as usize] = node;
        self.dims[i as usize] = dim;
        self.mass[i as usize] = mass;
        self.points[i as usize] = point;
        self.parents[i as usize] = parent;
        i
    }

    fn box_of(&self, n: u32) -> (&[f64], &[f64]) {
        let at = n as usize * 2 * self.dim;
        (
            &self.boxes[at..at + self.dim],
            &self.boxes[at + self.dim..at + 2 * self.dim],
        )
    }

    /// Inserts the stored point `p`; returns the point the tree now holds for it (an equal
    /// point already held, or `p`).
    pub fn insert(&mut self, store: &PointStore, p: u32) -> u32 {
        let x = store.point(p);
        if self.root == NONE {
            self.root = self.alloc(None, 1, p, NONE);
            return p;
        }
        let mut node = self.root;
        loop {
            let n = self.nodes[node as usize];
            let held = self.points[node as usize];
            if n.is_leaf() && store.point(held) == x {
                self.add_mass_upwards(node, 1);
                return held;
            }
            let (min, max) = leaf_or_box(
                &self.nodes,
                &self.points,
                &self.boxes,
                self.dim,
                store,
                node,
            );
            let (dim, cut) = draw_cut(&mut self.rng, min, max, x);
            let (below, above) = (cut < min[dim], cut >= max[dim]);
            if below || above {
                self.split(store, node, p, dim, cut, below);
                return p;
            }
            node = self.next(node, x);
        }
    }

    /// Puts a new node with cut (`dim`, `cut`) in `sibling`'s place, with a new leaf for the
    /// stored point `p` on the side `x_left` says.
    fn split(
        &mut self,
        store: &PointStore,
        sibling: u32,
        p: u32,
        dim: usize,
        cut: f64,
        x_left: bool,
    ) {
        let x = store.point(p);
        let parent = self.parents[sibling as usize];
        let leaf = self.alloc(None, 1, p, NONE);
        let (left, right) = if x_left {
            (leaf, sibling)
        } else {
            (sibling, leaf)
        };
        let sibling_mass = self.mass[sibling as usize];
        let node = self.alloc(
            Some((Node { cut, left, right }, dim as u32)),
            sibling_mass + 1,
            NONE,
            parent,
        );
        // The new node's box: the sibling's grown by x.
        let d = self.dim;
        let mut grown = std::mem::take(&mut self.scratch);
        grown.clear();
        {
            let (smin, smax) = bounds(self, store, sibling);
            grown.extend(smin.iter().zip(x).map(|(a, b)| a.min(*b)));
            grown.extend(smax.iter().zip(x).map(|(a, b)| a.max(*b)));
        }
        let at = node as usize * 2 * d;
        self.boxes[at..at + 2 * d].copy_from_slice(&grown);
        self.scratch = grown;
        self.parents[leaf as usize] = node;
        self.parents[sibling as usize] = node;
        if parent == NONE {
            self.root = node;
            return;
        }
        let pn = &mut self.nodes[parent as usize];
        if pn.left == sibling {
            pn.left = node;
        } else {
            pn.right = node;
        }
        // Ancestors hold one more point and grow to hold x.
        let mut a = parent;
        while a != NONE {
            self.mass[a as usize] += 1;
            let at = a as usize * 2 * d;
            let (lo, hi) = self.boxes[at..at + 2 * d].split_at_mut(d);
            for i in 0..d {
                lo[i] = lo[i].min(x[i]);
                hi[i] = hi[i].max(x[i]);
            }
            a = self.parents[a as usize];
        }
    }

    fn add_mass_upwards(&mut self, from: u32, by: i64) {
        let mut a = from;
        while a != NONE {
            let m = &mut self.mass[a as usize];
            *m = (*m as i64 + by) as u32;
            a = self.parents[a as usize];
        }
    }

    /// Removes one copy of the stored point `p`; false when the tree does not hold it.
    pub fn delete(&mut self, store: &PointStore, p: u32) -> bool {
        if self.root == NONE {
            return false;
        }
        let (leaf, _) = self.descend(store.point(p));
        if self.points[leaf as usize] != p {
            return false;
        }
        if self.mass[leaf as usize] > 1 {
            self.add_mass_upwards(leaf, -1);
            return true;
        }
        let parent = self.parents[leaf as usize];
        self.free.push(leaf);
        if parent == NONE {
            self.root = NONE;
            return true;
        }
        let pn = self.nodes[parent as usize];
        let sibling = if pn.left == leaf { pn.right } else { pn.left };
        let grand = self.parents[parent as usize];
        self.free.push(parent);
        self.parents[sibling as usize] = grand;
        if grand == NONE {
            self.root = sibling;
            return true;
        }
        let g = &mut self.nodes[grand as usize];
        if g.left == parent {
            g.left = sibling;
        } else {
            g.right = sibling;
        }
        // Ancestors hold one point fewer; their boxes shrink to their children's.
        let d = self.dim;
        let mut tight = std::mem::take(&mut self.scratch);
        let mut a = grand;
        while a != NONE {
            self.mass[a as usize] -= 1;
            let n = self.nodes[a as usize];
            tight.clear();
            {
                let (lmin, lmax) = bounds(self, store, n.left);
                let (rmin, rmax) = bounds(self, store, n.right);
                tight.extend(lmin.iter().zip(rmin).map(|(a, b)| a.min(*b)));
                tight.extend(lmax.iter().zip(rmax).map(|(a, b)| a.max(*b)));
            }
            let at = a as usize * 2 * d;
            self.boxes[at..at + 2 * d].copy_from_slice(&tight);
            a = self.parents[a as usize];
        }
        self.scratch = tight;
        true
    }

    /// The nodes from the root to the leaf `x` reaches.
    fn path(&self, x: &[f64], into: &mut Vec<u32>) {
        into.clear();
        if self.root == NONE {
            return;
        }
        let mut node = self.root;
        into.push(node);
        loop {
            let n = self.nodes[node as usize];
            if n.is_leaf() {
                return;
            }
            node = self.next(node, x);
            into.push(node);
        }
    }

    /// The root, or None for an empty tree (a descent starts here).
    pub fn root(&self) -> Option<u32> {
        (self.root != NONE).then_some(self.root)
    }

    /// One step of a descent towards `x`: the child of `node`, or `node` itself at a leaf.
    #[inline]
    pub fn next(&self, node: u32, x: &[f64]) -> u32 {
        let i = node as usize;
        // One dimension: every cut is in it, and the dims need not be read.
        let v = if self.dim == 1 {
            x[0]
        } else {
            x[self.dims[i] as usize]
        };
        self.nodes[i].child(v)
    }

    /// The scalar anomaly score of `x` (which the tree is not asked to hold), normalised.
    pub fn score(&self, store: &PointStore, x: &[f64]) -> f64 {
        if self.root == NONE {
            return 0.0;
        }
        let (leaf, depth) = self.descend(x);
        self.score_leaf(store, x, leaf, depth, &mut |m| (1.0 + m as f64).log2())
    }

    /// The leaf `x` reaches and its depth (the tree must not be empty).
    pub fn descend(&self, x: &[f64]) -> (u32, usize) {
        let mut node = self.root;
        let mut depth = 0;
        loop {
            let next = self.next(node, x);
            if next == node {
                return (node, depth);
            }
            node = next;
            depth += 1;
        }
    }

    /// [`Tree::descend`] for several points at once, in step: the descents are chains of
    /// dependent loads, and a step in each of them at once keeps several loads in flight.
    pub fn descend_all(&self, xs: &[&[f64]], out: &mut [(u32, usize)]) {
        for o in out.iter_mut() {
            *o = (self.root, 0);
        }
        loop {
            let mut moved = false;
            for (x, o) in xs.iter().zip(out.iter_mut()) {
                let next = self.next(o.0, x);
                let step = next != o.0;
                moved |= step;
                o.1 += step as usize;
                o.0 = next;
            }
            if !moved {
                return;
            }
        }
    }

    /// [`Tree::score`] once a descent has reached `leaf` at `depth`: from the leaf's score,
    /// up through its ancestors (by their parent links) until `x` lies inside a box; `scale`
    /// gives `log2(1 + mass)` for a tree mass (the caller may remember the last one).
    pub fn score_leaf(
        &self,
        store: &PointStore,
        x: &[f64],
        leaf: u32,
        depth: usize,
        scale: &mut impl FnMut(u32) -> f64,
    ) -> f64 {
        let tree_mass = self.mass();
        if store.point(self.points[leaf as usize]) == x {
            let m = self.mass[leaf as usize];
            return damp(m, tree_mass) * score_seen(depth, m) * scale(tree_mass);
        }
        let mut score = score_unseen(depth);
        let mut n = self.parents[leaf as usize];
        let mut d = depth;
        while n != NONE {
            d -= 1;
            let (min, max) = self.box_of(n);
            let p = cut_probability(min, max, x, None);
            if p == 0.0 {
                break;
            }
            score = (1.0 - p) * score + p * score_unseen(d);
            n = self.parents[n as usize];
        }
        score * scale(tree_mass)
    }

    /// The score of `x` split by dimension and side (it adds up to [`Tree::score`]).
    pub fn attribution(&self, store: &PointStore, x: &[f64], path: &mut Vec<u32>) -> DiVector {
        let mut out = DiVector::zeros(self.dim);
        self.path(x, path);
        let Some(&leaf) = path.last() else {
            return out;
        };
        let tree_mass = self.mass();
        let depth = path.len() - 1;
        let leaf_point = store.point(self.points[leaf as usize]);
        let mut probs = DiVector::zeros(self.dim);
        let duplicate = leaf_point == x;
        let mut score;
        // A query equal to a held point is scored as seen; its parts come from the boxes of
        // what lies beside it on the way up (the "shadow" box, without its own leaf).
        let mut shadow: Option<(Vec<f64>, Vec<f64>)> = None;
        if duplicate {
            let m = self.mass[leaf as usize];
            score = damp(m, tree_mass) * score_seen(depth, m);
        } else {
            score = score_unseen(depth);
            cut_probability(leaf_point, leaf_point, x, Some(&mut probs));
            out.add_scaled(&probs, score);
        }
        for (d, &n) in path[..depth].iter().enumerate().rev() {
            let p = if duplicate {
                let child = path[d + 1];
                let node = self.nodes[n as usize];
                let sibling = if node.left == child {
                    node.right
                } else {
                    node.left
                };
                let (smin, smax) = bounds(self, store, sibling);
                let grown = match shadow.take() {
                    None => (smin.to_vec(), smax.to_vec()),
                    Some((mut lo, mut hi)) => {
                        for i in 0..self.dim {
                            lo[i] = lo[i].min(smin[i]);
                            hi[i] = hi[i].max(smax[i]);
                        }
                        (lo, hi)
                    }
                };
                let p = cut_probability(&grown.0, &grown.1, x, Some(&mut probs));
                shadow = Some(grown);
                p
            } else {
                let (min, max) = self.box_of(n);
                cut_probability(min, max, x, Some(&mut probs))
            };
            if p == 0.0 {
                break;
            }
            if !duplicate {
                score = (1.0 - p) * score + p * score_unseen(d);
            }
            out.scale(1.0 - p);
            out.add_scaled(&probs, score_unseen(d));
        }
        out.normalize(normalizer(score, tree_mass));
        out
    }

    /// Depth of every leaf, once per point it holds (for tests and diagnostics).
    pub fn leaf_depths(&self) -> Vec<usize> {
        let mut out = Vec::new();
        if self.root == NONE {
            return out;
        }
        let mut stack = vec![(self.root, 0usize)];
        while let Some((n, d)) = stack.pop() {
            let node = self.nodes[n as usize];
            if node.is_leaf() {
                out.extend(std::iter::repeat_n(d, self.mass[n as usize] as usize));
            } else {
                stack.push((node.left, d + 1));
                stack.push((node.right, d + 1));
            }
        }
        out
    }

    /// Checks the tree's invariants: masses add up, boxes are the tight boxes of their
    /// leaves, every leaf lies on its side of each cut above it (for tests).
    pub fn check(&self, store: &PointStore) -> Result<(), String> {
        if self.root == NONE {
            return Ok(());
        }
        self.check_node(store, self.root, NONE).map(|_| ())
    }

    fn check_node(
        &self,
        store: &PointStore,
        n: u32,
        parent: u32,
    ) -> Result<(u32, Vec<f64>, Vec<f64>), String> {
        let node = self.nodes[n as usize];
        if self.parents[n as usize] != parent {
            return Err(format!(
                "node {n}: parent {} != {parent}",
                self.parents[n as usize]
            ));
        }
        let mass = self.mass[n as usize];
        if node.is_leaf() {
            let p = store.point(self.points[n as usize]).to_vec();
            return Ok((mass, p.clone(), p));
        }
        let (lm, lmin, lmax) = self.check_node(store, node.left, n)?;
        let (rm, rmin, rmax) = self.check_node(store, node.right, n)?;
        let d = self.dims[n as usize] as usize;
        if lmax[d] > node.cut || rmin[d] <= node.cut {
            return Err(format!(
                "node {n}: a leaf lies on the wrong side of its cut"
            ));
        }
        if lm + rm != mass {
            return Err(format!("node {n}: mass {mass} != {lm} + {rm}"));
        }
        let min: Vec<f64> = lmin.iter().zip(&rmin).map(|(a, b)| a.min(*b)).collect();
        let max: Vec<f64> = lmax.iter().zip(&rmax).map(|(a, b)| a.max(*b)).collect();
        let (bmin, bmax) = self.box_of(n);
        if bmin != min.as_slice() || bmax != max.as_slice() {
            return Err(format!("node {n}: box is not the tight box of its leaves"));
        }
        Ok((mass, min, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(points: &[Vec<f64>], seed: u64) -> (PointStore, Tree, Vec<u32>) {
        let mut store = PointStore::new(points[0].len());
        let mut tree = Tree::new(points[0].len(), Rng::new(seed));
        let mut held = Vec::new();
        for p in points {
            let i = store.add(p);
            let h = tree.insert(&store, i);
            store.hold(h);
            store.discard_if_unheld(i);
            held.push(h);
        }
        (store, tree, held)
    }

    #[test]
    fn inserts_and_deletes_keep_the_invariants() {
        let mut rng = Rng::new(3);
        let points: Vec<Vec<f64>> = (0..300)
            .map(|i| vec![rng.uniform() * 10.0, (i % 7) as f64, (i % 5) as f64 * 0.5])
            .collect();
        let (mut store, mut tree, held) = build(&points, 11);
        tree.check(&store).unwrap();
        assert_eq!(tree.mass(), 300);
        for (k, &h) in held.iter().enumerate().step_by(2) {
            assert!(tree.delete(&store, h), "point {k}");
            store.release(h);
            tree.check(&store).unwrap();
        }
        assert_eq!(tree.mass(), 150);
        assert_eq!(tree.leaf_depths().len(), 150);
    }

    #[test]
    fn equal_points_share_a_leaf_and_leave_one_at_a_time() {
        let pts = vec![vec![1.0], vec![1.0], vec![2.0], vec![1.0]];
        let (mut store, mut tree, held) = build(&pts, 1);
        assert_eq!(held[0], held[1]);
        assert_eq!(tree.mass(), 4);
        assert_eq!(tree.leaf_depths(), vec![1, 1, 1, 1]);
        tree.delete(&store, held[0]);
        store.release(held[0]);
        tree.check(&store).unwrap();
        assert_eq!(tree.mass(), 3);
    }

    #[test]
    fn an_outlier_scores_high_and_its_parts_add_up_and_point_its_way() {
        let mut rng = Rng::new(5);
        let points: Vec<Vec<f64>> = (0..256)
            .map(|_| vec![rng.uniform(), rng.uniform()])
            .collect();
        let (store, tree, _) = build(&points, 9);
        let mut path = Vec::new();
        let normal = tree.score(&store, &[0.5, 0.5]);
        let outlier = tree.score(&store, &[0.5, 8.0]);
        assert!(outlier > 2.0 * normal, "{outlier} vs {normal}");
        let parts = tree.attribution(&store, &[0.5, 8.0], &mut path);
        assert!((parts.total() - outlier).abs() < 1e-9);
        assert!(parts.high[1] > 0.9 * outlier, "{parts:?}");
        // A held point: scored as seen, and still split into parts that add up.
        let seen = tree.score(&store, &points[3]);
        let parts = tree.attribution(&store, &points[3], &mut path);
        assert!(
            (parts.total() - seen).abs() < 1e-9,
            "{} vs {seen}",
            parts.total()
        );
    }
}
