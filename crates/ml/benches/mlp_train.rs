//! MLP 784-256-128-10 training throughput: samples/s of one SGD step on a batch of 64, on 1 and
//! 2 threads (the same step `bench/torch_mlp.py` times in PyTorch).

use cairn_ml::model::{Model, ModelSpec};
use cairn_ml::optim::{Optimizer, OptimizerSpec};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const BATCH: usize = 64;

fn mlp_step(c: &mut Criterion) {
    let spec = ModelSpec::Mlp {
        inputs: 784,
        hidden: vec![256, 128],
        classes: 10,
    };
    let x: Vec<f32> = (0..BATCH * 784)
        .map(|i| ((i * 31) % 255) as f32 / 255.0)
        .collect();
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 10).collect();
    let mut group = c.benchmark_group("mlp_784_256_128_10_b64_sgd");
    group.throughput(Throughput::Elements(BATCH as u64));
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        let mut model = Model::init(spec.clone(), 1).expect("model");
        let mut optimizer =
            Optimizer::new(&OptimizerSpec::sgd(0.01), model.params().len()).expect("optimizer");
        let mut workspace = model.workspace();
        let mut grad = vec![0.0f32; model.params().len()];
        group.bench_function(BenchmarkId::new("threads", threads), |bench| {
            bench.iter(|| {
                pool.install(|| {
                    model
                        .loss_and_gradient_in(&mut workspace, &x, &labels, BATCH, 0, &mut grad)
                        .expect("step");
                    optimizer.step(model.params_mut(), &grad);
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, mlp_step);
criterion_main!(benches);
