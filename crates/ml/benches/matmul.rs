//! Matrix product throughput: GFLOP/s of `C = A·B` for square sizes on 1 and 2 threads
//! (criterion's "elements/s" here counts floating-point operations, 2·n³ per product).

use cairn_ml::kernels::matmul;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn values(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn square_products(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    for n in [256usize, 512, 1024] {
        let a = values(n * n);
        let b = values(n * n);
        let mut out = vec![0.0f32; n * n];
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            group.bench_with_input(
                BenchmarkId::new(format!("{threads}t"), n),
                &n,
                |bench, &n| {
                    bench.iter(|| pool.install(|| matmul(&a, &b, &mut out, n, n, n)));
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, square_products);
criterion_main!(benches);
