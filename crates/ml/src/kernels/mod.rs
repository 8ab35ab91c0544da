//! Bit-exact f32 kernels: every sum has a fixed order, nothing is fused, and parallel work splits
//! independent outputs only, so results are identical on any CPU and any thread count.
//!
//! Kernels take slices plus explicit shapes. A slice whose length does not match its shape is a
//! programmer error and panics; checking user input is the caller's job (see [`crate::model`]).

pub mod activation;
pub mod bias;
pub mod conv;
pub mod dropout;
pub mod loss;
pub mod matmul;
pub mod pool;

pub use activation::{relu_backward, relu_forward};
pub use bias::{add_bias_columns, add_bias_rows, column_sums, row_sums};
pub use conv::{conv2d_backward, conv2d_forward, Conv2dShape, ConvScratch};
pub use dropout::{dropout_mask, DROPOUT_P_MAX};
pub use loss::{cross_entropy_rows, softmax_cross_entropy};
pub use matmul::{
    active_isa, gemm, gemm_on, matmul, matmul_a_bt, matmul_at_b, set_isa_override, Isa, Layout,
};
pub use pool::{max_pool2_backward, max_pool2_forward};
