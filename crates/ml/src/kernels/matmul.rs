//! Cache-blocked matrix products `C = op(A) · op(B)` with a fixed summation order.
//!
//! Every output element is the sum `((0 + a₀b₀) + a₁b₁) + … + a_{k-1}b_{k-1}`, taken strictly in
//! increasing `k`, with each product rounded before it is added. The kernel vectorizes across
//! *independent outputs* (a row of `B` is broadcast against a register tile of `C`), never across
//! one sum, so the vector width, the tile shape, the cache blocking and the thread count change
//! the speed but not one bit of the result. That is also why the AVX2 and AVX-512 copies below
//! are the same source compiled with wider registers: same operations in the same order.

use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};

/// Depth of one cache block along `k`: a `KC x NR` panel of `B` stays in L1 while a tile of `A`
/// rows streams past it.
const KC: usize = 256;
/// Most rows of `C` one parallel task owns (its packed `A` block stays in L2).
const MAX_TASK_ROWS: usize = 128;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_THRESHOLD: usize = 1 << 16;

/// How a matrix operand is stored in its slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Row-major as used: an `r x c` operand is stored `r x c`.
    Normal,
    /// Stored transposed: an `r x c` operand is stored row-major as `c x r`.
    Transposed,
}

/// The instruction set a product runs on; every choice gives the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Isa {
    /// Whatever the compilation target guarantees (SSE2 on x86-64, NEON on aarch64).
    Baseline,
    /// x86-64 AVX2 (without FMA).
    Avx2,
    /// x86-64 AVX-512F (without FMA).
    Avx512,
}

impl Isa {
    /// The widest instruction set this CPU supports, detected at run time.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// Whether this CPU can run code compiled for `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Instruction set forced by [`set_isa_override`]: 0 = none, else `Isa as u8 + 1`.
static ISA_OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// Forces every later product in this process onto `isa` (or back to run-time detection with
/// `None`). Results do not change — that is the point — so tests use it to prove that a whole
/// training run gives the same bits on the baseline path as on the widest one.
///
/// Panics if `isa` is not available on this CPU.
pub fn set_isa_override(isa: Option<Isa>) {
    let code = match isa {
        None => 0,
        Some(isa) => {
            assert!(isa.is_available(), "{isa:?} is not available on this CPU");
            isa as u8 + 1
        }
    };
    ISA_OVERRIDE.store(code, Ordering::Relaxed);
}

/// The instruction set [`gemm`] uses now: the override if one is set, else [`Isa::detect`].
pub fn active_isa() -> Isa {
    match ISA_OVERRIDE.load(Ordering::Relaxed) {
        1 => Isa::Baseline,
        2 => Isa::Avx2,
        3 => Isa::Avx512,
        _ => Isa::detect(),
    }
}

/// `C (m x n) = A (m x k) · B (k x n)`, all row-major.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    gemm(m, n, k, a, Layout::Normal, b, Layout::Normal, c);
}

/// `C (m x n) = Aᵀ · B` where `A` is stored `k x m` and `B` is `k x n` (weight gradients).
pub fn matmul_at_b(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    gemm(m, n, k, a, Layout::Transposed, b, Layout::Normal, c);
}

/// `C (m x n) = A · Bᵀ` where `A` is `m x k` and `B` is stored `n x k` (dense forward pass).
pub fn matmul_a_bt(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    gemm(m, n, k, a, Layout::Normal, b, Layout::Transposed, c);
}

/// `C (m x n) = op(A) · op(B)` on the fastest instruction set this CPU has.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_layout: Layout,
    b: &[f32],
    b_layout: Layout,
    c: &mut [f32],
) {
    gemm_on(active_isa(), m, n, k, a, a_layout, b, b_layout, c);
}

/// [`gemm`] on a chosen instruction set; exists so tests can prove every path gives equal bits.
///
/// Panics if `isa` is not available on this CPU or if a slice length does not match its shape.
#[allow(clippy::too_many_arguments)]
pub fn gemm_on(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_layout: Layout,
    b: &[f32],
    b_layout: Layout,
    c: &mut [f32],
) {
    assert_eq!(
        a.len(),
        m * k,
        "gemm: A holds {} values, not {m}x{k}",
        a.len()
    );
    assert_eq!(
        b.len(),
        k * n,
        "gemm: B holds {} values, not {k}x{n}",
        b.len()
    );
    assert_eq!(
        c.len(),
        m * n,
        "gemm: C holds {} values, not {m}x{n}",
        c.len()
    );
    assert!(
        isa.is_available(),
        "gemm: {isa:?} is not available on this CPU"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(0.0);
        return;
    }
    let operands = Operands {
        m,
        n,
        k,
        a,
        a_layout,
        b,
        b_layout,
    };
    match isa {
        Isa::Baseline => blocked::<4, 8>(&operands, c, Kernel::Baseline),
        Isa::Avx2 => blocked::<4, 16>(&operands, c, Kernel::Avx2),
        Isa::Avx512 => blocked::<4, 32>(&operands, c, Kernel::Avx512),
    }
}

/// The shapes and slices of one product.
struct Operands<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    a_layout: Layout,
    b: &'a [f32],
    b_layout: Layout,
}

impl Operands<'_> {
    /// Writes rows `first .. first + height` of `A` into `dst` as `[k][MR]`, zero-padding
    /// missing rows.
    fn pack_a<const MR: usize>(&self, first: usize, height: usize, dst: &mut [f32]) {
        let (m, k) = (self.m, self.k);
        match self.a_layout {
            Layout::Normal => {
                let rows = &self.a[first * k..(first + height) * k];
                transpose_into::<MR>(rows, height, k, dst);
            }
            Layout::Transposed => {
                for (depth, col) in dst.chunks_exact_mut(MR).enumerate() {
                    let src = &self.a[depth * m + first..depth * m + first + height];
                    copy_padded::<MR>(col.try_into().expect("chunk of MR"), src);
                }
            }
        }
    }

    /// Writes columns `col0 .. col0 + width` of `B` into `dst` as `[k][NR]`, zero-padding
    /// missing columns.
    fn pack_b<const NR: usize>(&self, col0: usize, width: usize, dst: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        match self.b_layout {
            Layout::Normal => {
                for (depth, row) in dst.chunks_exact_mut(NR).enumerate() {
                    let src = &self.b[depth * n + col0..depth * n + col0 + width];
                    copy_padded::<NR>(row.try_into().expect("chunk of NR"), src);
                }
            }
            Layout::Transposed => {
                let rows = &self.b[col0 * k..(col0 + width) * k];
                transpose_into::<NR>(rows, width, k, dst);
            }
        }
    }
}

/// `dst = src` followed by zeros. A whole-width copy is a fixed-size array move the compiler
/// inlines as vector loads and stores; a `copy_from_slice` of a few dozen values would be a call
/// to `memmove`, which dominated small products.
#[inline(always)]
fn copy_padded<const W: usize>(dst: &mut [f32; W], src: &[f32]) {
    if let Ok(full) = <&[f32; W]>::try_from(src) {
        *dst = *full;
    } else {
        for (i, slot) in dst.iter_mut().enumerate() {
            *slot = if i < src.len() { src[i] } else { 0.0 };
        }
    }
}

/// `dst = src[..dst.len()]`, inlined like [`copy_padded`].
#[inline(always)]
fn copy_prefix<const W: usize>(dst: &mut [f32], src: &[f32; W]) {
    if let Ok(full) = <&mut [f32; W]>::try_from(&mut *dst) {
        *full = *src;
    } else {
        for (slot, &value) in dst.iter_mut().zip(src) {
            *slot = value;
        }
    }
}

/// Writes the `lines x depth` row-major block `src` transposed into `dst` as `[depth][W]`,
/// zero-filling lines `lines .. W`. Works through `depth` eight values at a time so the few
/// destination rows being written stay in L1.
#[inline(always)]
fn transpose_into<const W: usize>(src: &[f32], lines: usize, depth: usize, dst: &mut [f32]) {
    const BLOCK: usize = 8;
    let mut d0 = 0;
    while d0 < depth {
        let span = BLOCK.min(depth - d0);
        let out = &mut dst[d0 * W..(d0 + span) * W];
        for line in 0..W {
            if line < lines {
                let values = &src[line * depth + d0..line * depth + d0 + span];
                for (d, &value) in values.iter().enumerate() {
                    out[d * W + line] = value;
                }
            } else {
                for d in 0..span {
                    out[d * W + line] = 0.0;
                }
            }
        }
        d0 += span;
    }
}

thread_local! {
    /// Packed `B` of the product the calling thread is running.
    static PACKED_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Packed `A` rows of the task this thread is running.
    static PACKED_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` on a scratch buffer of `len` values (contents unspecified) from `slot`, reusing
/// the thread's buffer when it is free and allocating when it is busy (a re-entered product on a
/// work-stealing thread).
fn with_scratch<R>(
    slot: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    work: impl FnOnce(&mut [f32]) -> R,
) -> R {
    let mut work = Some(work);
    let reused = slot.with(|cell| {
        cell.try_borrow_mut().ok().map(|mut buffer| {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
            (work.take().expect("work runs once"))(&mut buffer[..len])
        })
    });
    match reused {
        Some(result) => result,
        None => (work.take().expect("work runs once"))(&mut vec![0.0; len]),
    }
}

/// Which compiled copy of the tile loop to run.
#[derive(Clone, Copy)]
enum Kernel {
    Baseline,
    Avx2,
    Avx512,
}

/// Packs `B` into `NR`-column panels (`[panel][k][NR]`, zero-padded), splits `C` into row blocks
/// and runs them in parallel; each block packs its rows of `A` into `MR`-row panels.
fn blocked<const MR: usize, const NR: usize>(ops: &Operands<'_>, c: &mut [f32], kernel: Kernel) {
    let (m, n, k) = (ops.m, ops.n, ops.k);
    let panels = n.div_ceil(NR);
    let parallel = m * n * k >= PARALLEL_THRESHOLD;
    with_scratch(&PACKED_B, panels * k * NR, |packed_b| {
        let pack_b = |(panel, dst): (usize, &mut [f32])| {
            let col0 = panel * NR;
            ops.pack_b::<NR>(col0, NR.min(n - col0), dst);
        };
        if parallel {
            packed_b.par_chunks_mut(k * NR).enumerate().for_each(pack_b);
        } else {
            packed_b.chunks_mut(k * NR).enumerate().for_each(pack_b);
        }
        let packed_b: &[f32] = packed_b;

        let threads = if parallel {
            rayon::current_num_threads().max(1)
        } else {
            1
        };
        let task_rows = m
            .div_ceil(threads)
            .div_ceil(MR)
            .saturating_mul(MR)
            .clamp(MR, MAX_TASK_ROWS);
        let run = |(task, block): (usize, &mut [f32])| {
            let row0 = task * task_rows;
            let rows = block.len() / n;
            with_scratch(&PACKED_A, rows.div_ceil(MR) * k * MR, |packed_a| {
                for (panel, dst) in packed_a.chunks_exact_mut(k * MR).enumerate() {
                    let first = row0 + panel * MR;
                    ops.pack_a::<MR>(first, MR.min(row0 + rows - first), dst);
                }
                let tile = Tile {
                    rows,
                    n,
                    k,
                    packed_a,
                    packed_b,
                };
                match kernel {
                    Kernel::Baseline => tile.run::<MR, NR>(block),
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `gemm_on` asserted that the CPU supports the feature.
                    Kernel::Avx2 => unsafe { tile.run_avx2::<MR, NR>(block) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `gemm_on` asserted that the CPU supports the feature.
                    Kernel::Avx512 => unsafe { tile.run_avx512::<MR, NR>(block) },
                    #[cfg(not(target_arch = "x86_64"))]
                    _ => tile.run::<MR, NR>(block),
                }
            });
        };
        if parallel {
            c.par_chunks_mut(task_rows * n).enumerate().for_each(run);
        } else {
            c.chunks_mut(task_rows * n).enumerate().for_each(run);
        }
    });
}

/// One row block of `C` with its packed operands.
struct Tile<'a> {
    rows: usize,
    n: usize,
    k: usize,
    packed_a: &'a [f32],
    packed_b: &'a [f32],
}

impl Tile<'_> {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2<const MR: usize, const NR: usize>(&self, c: &mut [f32]) {
        self.run::<MR, NR>(c);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512<const MR: usize, const NR: usize>(&self, c: &mut [f32]) {
        self.run::<MR, NR>(c);
    }

    /// Walks the block: `k` in cache blocks (in increasing order, so every sum keeps its order),
    /// then `B` panels, then `A` panels.
    #[inline(always)]
    fn run<const MR: usize, const NR: usize>(&self, c: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        let mut depth0 = 0;
        while depth0 < k {
            let depth = KC.min(k - depth0);
            for (panel_b, b_panel) in self.packed_b.chunks_exact(k * NR).enumerate() {
                let col0 = panel_b * NR;
                let width = NR.min(n - col0);
                let b_block = &b_panel[depth0 * NR..(depth0 + depth) * NR];
                for (panel_a, a_panel) in self.packed_a.chunks_exact(k * MR).enumerate() {
                    let row0 = panel_a * MR;
                    let height = MR.min(self.rows - row0);
                    let a_block = &a_panel[depth0 * MR..(depth0 + depth) * MR];
                    let mut acc = [[0.0f32; NR]; MR];
                    if depth0 > 0 {
                        for (i, acc_row) in acc.iter_mut().enumerate().take(height) {
                            let start = (row0 + i) * n + col0;
                            copy_padded(acc_row, &c[start..start + width]);
                        }
                    }
                    micro_kernel::<MR, NR>(a_block, b_block, &mut acc);
                    for (i, acc_row) in acc.iter().enumerate().take(height) {
                        let start = (row0 + i) * n + col0;
                        copy_prefix(&mut c[start..start + width], acc_row);
                    }
                }
            }
            depth0 += depth;
        }
    }
}

/// `acc[i][j] += a[d][i] * b[d][j]` for `d` in order: the only arithmetic in a product.
#[inline(always)]
fn micro_kernel<const MR: usize, const NR: usize>(
    a_block: &[f32],
    b_block: &[f32],
    acc: &mut [[f32; NR]; MR],
) {
    for (a, b) in a_block.chunks_exact(MR).zip(b_block.chunks_exact(NR)) {
        let a: &[f32; MR] = a.try_into().expect("chunk of MR");
        let b: &[f32; NR] = b.try_into().expect("chunk of NR");
        for i in 0..MR {
            let ai = a[i];
            for j in 0..NR {
                acc[i][j] += ai * b[j];
            }
        }
    }
}

#[cfg(test)]
mod tests;
