//! CNN (conv32-pool-conv64-pool-fc128-dropout-fc10 on 1x28x28) training throughput: samples/s of
//! one Adam step on a batch of 32, on 1 and 2 threads.

use cairn_ml::model::{Model, ModelSpec};
use cairn_ml::optim::{Optimizer, OptimizerSpec};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const BATCH: usize = 32;

fn cnn_step(c: &mut Criterion) {
    let spec = ModelSpec::Cnn {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
        dropout: 0.5,
    };
    let x: Vec<f32> = (0..BATCH * 784)
        .map(|i| ((i * 31) % 255) as f32 / 255.0)
        .collect();
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 10).collect();
    let mut group = c.benchmark_group("cnn_28x28_b32_adam");
    group.throughput(Throughput::Elements(BATCH as u64));
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        let mut model = Model::init(spec.clone(), 1).expect("model");
        let mut optimizer =
            Optimizer::new(&OptimizerSpec::adam(1e-3), model.params().len()).expect("optimizer");
        let mut workspace = model.workspace();
        let mut grad = vec![0.0f32; model.params().len()];
        let mut seed = 0u64;
        group.bench_function(BenchmarkId::new("threads", threads), |bench| {
            bench.iter(|| {
                seed += 1;
                pool.install(|| {
                    model
                        .loss_and_gradient_in(&mut workspace, &x, &labels, BATCH, seed, &mut grad)
                        .expect("step");
                    optimizer.step(model.params_mut(), &grad);
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, cnn_step);
criterion_main!(benches);
