//! Throughput of the main rules against the machine's memory bandwidth.
//!
//! `bandwidth/read_256MiB_all_threads` is the floor the coordinate-wise rules are compared with:
//! they read the `n · d · 4` input bytes once, on all threads. `median_into` and
//! `trimmed_mean_into` are those rules through `aggregate_into`, into one reused output buffer.
//!
//! Quick by default (n ∈ {10, 50}, d = 1e5). `CAIRN_BENCH_FULL=1` runs the full grid:
//! n ∈ {10, 50, 200} × d ∈ {1e5, 1e6}, plus n = 10, d = 1e7. Criterion reports rules in GB/s of
//! input read (`n · d · 4` bytes), the `memcpy` and `read` groups in GB/s of buffer, and
//! `krum_distances` in Gelem/s where one element is one flop of the `3 · n(n−1)/2 · d` the pairwise
//! distances cost, i.e. GFLOP/s. `matmul` is our matrix product (`cairn_ml::kernels::matmul`) on all
//! threads, also in GFLOP/s (`2·s³` flops for size `s`), measured in the same run: the
//! reference the distances are compared with.

use std::hint::black_box;
use std::time::Duration;

use cairn_robust::distance::pairwise_squared_distances;
use cairn_robust::{aggregate, aggregate_into, Context, GmInit, KrumVariant, Rule, Updates};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;

fn shapes() -> Vec<(usize, usize)> {
    if std::env::var_os("CAIRN_BENCH_FULL").is_some() {
        let mut grid: Vec<(usize, usize)> = [10, 50, 200]
            .iter()
            .flat_map(|&n| [100_000, 1_000_000].into_iter().map(move |d| (n, d)))
            .collect();
        grid.push((10, 10_000_000));
        grid
    } else {
        vec![(10, 100_000), (50, 100_000)]
    }
}

fn random_updates(n: usize, d: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64((n * 31 + d) as u64);
    (0..n * d)
        .map(|_| (rng.next_u32() >> 8) as f32 / 16_777_216.0 - 0.5)
        .collect()
}

fn bandwidth(c: &mut Criterion) {
    let bytes = 256 << 20;
    let source = vec![1.0f32; bytes / 4];
    let mut target = vec![0.0f32; bytes / 4];
    let mut group = c.benchmark_group("bandwidth");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("memcpy_256MiB", |b| {
        b.iter(|| target.copy_from_slice(black_box(&source)))
    });
    group.bench_function("read_256MiB", |b| {
        b.iter(|| {
            let mut lanes = [0.0f32; 16];
            for chunk in black_box(&source).chunks_exact(16) {
                for (lane, x) in lanes.iter_mut().zip(chunk) {
                    *lane += x;
                }
            }
            black_box(lanes)
        })
    });
    group.bench_function("read_256MiB_all_threads", |b| {
        b.iter(|| read_all_threads(black_box(&source)))
    });
    group.finish();
    if std::env::var_os("CAIRN_BENCH_FULL").is_some() {
        // 2 GiB, far beyond any cache (the host's L3 may hold much of 256 MiB): the bandwidth
        // inputs larger than the cache actually get from memory.
        let large = vec![1.0f32; (2usize << 30) / 4];
        let mut group = c.benchmark_group("bandwidth");
        group.throughput(Throughput::Bytes(2 << 30));
        group.bench_function("read_2GiB_all_threads", |b| {
            b.iter(|| read_all_threads(black_box(&large)))
        });
        group.finish();
    }
}

/// Sums `data` on all threads in 256 KiB blocks, 16 lanes at a time (the read floor).
fn read_all_threads(data: &[f32]) -> f32 {
    data.par_chunks(1 << 16)
        .map(|block| {
            let mut lanes = [0.0f32; 16];
            for chunk in block.chunks_exact(16) {
                for (lane, x) in lanes.iter_mut().zip(chunk) {
                    *lane += x;
                }
            }
            lanes.iter().sum::<f32>()
        })
        .sum::<f32>()
}

/// Our matmul on all threads, the reference for `krum_distances`.
fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    for size in [256usize, 512, 1024] {
        let a = random_updates(size, size);
        let b: Vec<f32> = a.iter().rev().copied().collect();
        let mut out = vec![0.0f32; size * size];
        group.throughput(Throughput::Elements(2 * (size as u64).pow(3)));
        group.bench_function(BenchmarkId::new("all_threads", size), |bench| {
            bench.iter(|| cairn_ml::kernels::matmul(&a, &b, &mut out, size, size, size))
        });
    }
    group.finish();
}

fn rules(c: &mut Criterion) {
    let ctx = Context::default();
    for (n, d) in shapes() {
        let data = random_updates(n, d);
        let updates = Updates::new(&data, n, d).expect("shape");
        let f = (n - 3) / 4;
        let named = [
            ("mean", Rule::Mean),
            ("median", Rule::Median),
            ("trimmed_mean", Rule::TrimmedMean { f }),
            (
                "krum",
                Rule::Krum {
                    f,
                    variant: KrumVariant::Textbook,
                },
            ),
            (
                "geometric_median",
                Rule::GeometricMedian {
                    nu: 0.1,
                    iterations: 3,
                    init: GmInit::Zeros,
                },
            ),
        ];
        for (name, rule) in named {
            let mut group = c.benchmark_group(name);
            group.throughput(Throughput::Bytes((n * d * 4) as u64));
            group.bench_with_input(BenchmarkId::new(format!("n{n}"), d), &updates, |b, u| {
                b.iter(|| aggregate(&rule, &[], u, &ctx).expect("aggregate"))
            });
            group.finish();
        }
        // The same two rules written into one reused buffer (`aggregate_into`), as a node does
        // round after round: no fresh output pages from the OS at each call.
        let mut out = vec![0.0f32; d];
        for (name, rule) in [
            ("median_into", Rule::Median),
            ("trimmed_mean_into", Rule::TrimmedMean { f }),
        ] {
            let mut group = c.benchmark_group(name);
            group.throughput(Throughput::Bytes((n * d * 4) as u64));
            group.bench_with_input(BenchmarkId::new(format!("n{n}"), d), &updates, |b, u| {
                b.iter(|| aggregate_into(&rule, &[], u, &ctx, &mut out).expect("aggregate"))
            });
            group.finish();
        }
        let mut group = c.benchmark_group("krum_distances");
        group.throughput(Throughput::Elements((3 * n * (n - 1) / 2 * d) as u64));
        group.bench_with_input(BenchmarkId::new(format!("n{n}"), d), &updates, |b, u| {
            b.iter(|| pairwise_squared_distances(u))
        });
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bandwidth, matmul, rules
}
criterion_main!(benches);
