//! Matrix products against the naive sequential sum, on every layout, instruction set and
//! thread count.

use super::*;

/// Deterministic pseudo-random values in [-1, 1) with a spread of magnitudes.
fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// The defining order: sum over `k` sequentially, starting from zero.
fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut sum = 0.0f32;
            for d in 0..k {
                sum += a[i * k + d] * b[d * n + j];
            }
            c[i * n + j] = sum;
        }
    }
    c
}

fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = x[r * cols + c];
        }
    }
    t
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (3, 5, 7),
    (17, 33, 9),
    (5, 300, 31),
    (130, 19, 70),
    (67, 513, 45),
    (9, 2, 600),
];

#[test]
fn every_layout_and_isa_matches_the_naive_sequential_sum_bit_for_bit() {
    for (m, k, n) in SHAPES {
        let a = values(m * k, 1 + m as u32);
        let b = values(k * n, 7 + n as u32);
        let expected = bits(&naive(&a, &b, m, k, n));
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            if !isa.is_available() {
                continue;
            }
            for (a_layout, b_layout) in [
                (Layout::Normal, Layout::Normal),
                (Layout::Transposed, Layout::Normal),
                (Layout::Normal, Layout::Transposed),
                (Layout::Transposed, Layout::Transposed),
            ] {
                let a_in = if a_layout == Layout::Normal { &a } else { &at };
                let b_in = if b_layout == Layout::Normal { &b } else { &bt };
                let mut c = vec![f32::NAN; m * n];
                gemm_on(isa, m, n, k, a_in, a_layout, b_in, b_layout, &mut c);
                assert_eq!(
                    bits(&c),
                    expected,
                    "{m}x{k}x{n} {isa:?} {a_layout:?} {b_layout:?}"
                );
            }
        }
    }
}

#[test]
fn thread_count_does_not_change_product_bits() {
    let (m, k, n) = (150, 333, 97);
    let a = values(m * k, 3);
    let b = values(k * n, 4);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        let mut c = vec![0.0; m * n];
        pool.install(|| matmul(&a, &b, &mut c, m, k, n));
        bits(&c)
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    assert_eq!(one, bits(&naive(&a, &b, m, k, n)));
}

#[test]
fn empty_depth_gives_zeros() {
    let mut c = vec![1.0; 6];
    matmul(&[], &[], &mut c, 2, 0, 3);
    assert_eq!(c, vec![0.0; 6]);
}

#[test]
#[should_panic(expected = "gemm: A holds")]
fn mismatched_shape_is_a_programmer_error() {
    let mut c = vec![0.0; 4];
    matmul(&[1.0; 3], &[1.0; 4], &mut c, 2, 2, 2);
}
