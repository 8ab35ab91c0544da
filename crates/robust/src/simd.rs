//! Run-time choice of instruction set for the crate's vector kernels.
//!
//! Every kernel is written once, as portable Rust over fixed-size arrays that LLVM turns into
//! vector instructions. [`dispatch!`] compiles it again with AVX2 enabled and, for the kernels
//! that gain from 512-bit registers, with AVX-512F, and picks, at each call, the widest the CPU
//! has. The kernels use integer operations, or the same IEEE operations in the same order, on
//! every path: the choice never changes a result's bits.

/// Defines a function that evaluates one expression compiled for the widest instruction set the
/// CPU offers: `avx512` where it has AVX-512F, `avx2` where it has AVX2, `portable` otherwise
/// (and off x86-64). The arms may differ, e.g. in lane count. Without an `avx512` arm, AVX-512
/// CPUs take the AVX2 one. Arguments must be plain names; const generics are passed on.
///
/// ```ignore
/// dispatch! {
///     /// Doc comment of the function.
///     fn copy_keys(keys: &mut [i32], source: &[f32]) -> i32 {
///         avx512: copy_keys_portable(keys, source),
///         avx2: copy_keys_portable(keys, source),
///         portable: copy_keys_portable(keys, source),
///     }
/// }
/// ```
macro_rules! dispatch {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident $(<$(const $generic:ident: $bound:ty),+>)?
            ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
        {
            $(avx512: $avx512:expr,)?
            avx2: $avx2:expr,
            portable: $portable:expr $(,)?
        }
    ) => {
        $(#[$meta])*
        #[inline]
        $vis fn $name $(<$(const $generic: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                $crate::simd::dispatch!(@arm "avx512f", [$($avx512)?],
                    [$(<$(const $generic: $bound),+>)?], [$(::<$($generic),+>)?],
                    ($($arg: $ty),*), [$(-> $ret)?]);
                $crate::simd::dispatch!(@arm "avx2", [$avx2],
                    [$(<$(const $generic: $bound),+>)?], [$(::<$($generic),+>)?],
                    ($($arg: $ty),*), [$(-> $ret)?]);
            }
            $portable
        }
    };
    // No arm for this instruction set.
    (@arm $feature:tt, [], $($signature:tt)*) => {};
    // Returns the arm's value, compiled with `$feature`, when the CPU has it.
    (@arm $feature:tt, [$body:expr], [$($generics:tt)*], [$($turbofish:tt)*],
        ($($arg:ident: $ty:ty),*), [$($ret:tt)*]) => {{
        #[target_feature(enable = $feature)]
        unsafe fn arm $($generics)* ($($arg: $ty),*) $($ret)* {
            $body
        }
        if std::arch::is_x86_feature_detected!($feature) {
            // SAFETY: the CPU has the feature `arm` is compiled for, checked just above.
            return unsafe { arm $($turbofish)* ($($arg),*) };
        }
    }};
}

pub(crate) use dispatch;
