//! Fuzzes the optimizer-state decoder (part of every dispute witness): arbitrary bytes must
//! decode to a typed error or to a state that re-encodes to exactly the same bytes.
#![no_main]

use cairn_ml::optim::OptimizerSpec;
use cairn_round::optimizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(first % 8);
    let specs = [
        OptimizerSpec::sgd(0.1),
        OptimizerSpec::Sgd {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.0,
        },
        OptimizerSpec::adam(0.01),
    ];
    for spec in &specs {
        if let Ok(state) = optimizer::decode(rest, spec, count) {
            assert_eq!(optimizer::encode(&state), rest);
        }
    }
});
