//! Token amounts: u128 base units, and the exact integer arithmetic rewards and slashing need.

use crate::encoding::PPM;

/// `floor(a * b / c)` computed exactly with a 256-bit intermediate product; `None` when `c` is 0
/// or the quotient does not fit in u128.
pub fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    let (high, low) = widening_mul(a, b);
    if high >= c {
        return None;
    }
    // Shift-subtract long division of the 256-bit (high, low) by c; the remainder stays below c.
    let mut remainder = high;
    let mut quotient = 0u128;
    for bit in (0..128).rev() {
        let carry = remainder >> 127;
        remainder = (remainder << 1) | ((low >> bit) & 1);
        quotient <<= 1;
        if carry == 1 || remainder >= c {
            remainder = remainder.wrapping_sub(c);
            quotient |= 1;
        }
    }
    Some(quotient)
}

/// `floor(amount * ppm / 1_000_000)`: a fraction of an amount, never more than the amount
/// (a `ppm` above one million counts as one million).
pub fn fraction(amount: u128, ppm: u32) -> u128 {
    let ppm = ppm.min(PPM);
    // With ppm <= PPM the quotient is at most `amount`, so it always fits.
    mul_div(amount, u128::from(ppm), u128::from(PPM)).unwrap_or(amount)
}

/// `ceil(amount * ppm / 1_000_000)`: a fraction of an amount rounded up, never more than the
/// amount. Slashes use it, so a positive fraction of a positive bond always takes something.
pub fn fraction_up(amount: u128, ppm: u32) -> u128 {
    let ppm = u128::from(ppm.min(PPM));
    let down = fraction(amount, ppm as u32);
    // amount * ppm = down * PPM + r with r < PPM, so r is exact modulo 2^128.
    let remainder = amount
        .wrapping_mul(ppm)
        .wrapping_sub(down.wrapping_mul(u128::from(PPM)));
    // A remainder means down < amount * ppm / PPM <= amount, so one more unit still fits.
    down + u128::from(remainder != 0)
}

/// The full 256-bit product of two u128 values as (high, low) halves.
fn widening_mul(a: u128, b: u128) -> (u128, u128) {
    const MASK: u128 = u64::MAX as u128;
    let (a0, a1) = (a & MASK, a >> 64);
    let (b0, b1) = (b & MASK, b >> 64);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let middle = (p00 >> 64) + (p01 & MASK) + (p10 & MASK);
    let low = (p00 & MASK) | (middle << 64);
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (middle >> 64);
    (high, low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mul_div_handles_products_beyond_u128() {
        assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), Some(u128::MAX));
        assert_eq!(mul_div(u128::MAX, 3, 6), Some(u128::MAX / 2));
        assert_eq!(mul_div(u128::MAX, 2, 1), None);
        assert_eq!(mul_div(1, 1, 0), None);
        assert_eq!(fraction(1_000, 250_000), 250);
        assert_eq!(fraction(u128::MAX, PPM), u128::MAX);
        assert_eq!(fraction(1_000, u32::MAX), 1_000);
        assert_eq!(fraction_up(1_000, 250_000), 250);
        assert_eq!(fraction_up(9, 100_000), 1);
        assert_eq!(fraction_up(1, 1), 1);
        assert_eq!(fraction_up(0, 100_000), 0);
        assert_eq!(fraction_up(5, 0), 0);
        assert_eq!(fraction_up(u128::MAX, PPM), u128::MAX);
        assert_eq!(
            fraction_up(u128::MAX, 999_999),
            u128::MAX - u128::MAX / 1_000_000
        );
    }

    proptest! {
        #[test]
        fn mul_div_matches_native_arithmetic_when_it_fits(a in any::<u64>(), b in any::<u64>(), c in 1u128..) {
            let expected = (u128::from(a) * u128::from(b)) / c;
            prop_assert_eq!(mul_div(u128::from(a), u128::from(b), c), Some(expected));
        }

        #[test]
        fn fraction_up_is_the_ceiling_and_never_exceeds_the_amount(amount in any::<u64>(), ppm in 0u32..=PPM) {
            let exact = u128::from(amount) * u128::from(ppm);
            let expected = exact.div_ceil(u128::from(PPM));
            prop_assert_eq!(fraction_up(u128::from(amount), ppm), expected);
            prop_assert!(expected <= u128::from(amount));
        }
    }
}
