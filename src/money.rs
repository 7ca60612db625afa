//! Exact decimal money. Prices are decimal strings in the catalog and stay exact decimals
//! through every multiplication and sum: no float ever touches an amount.

pub use rust_decimal::Decimal;

/// The cost of `tokens` tokens at `price_per_million` (USD per 1M tokens), exactly.
///
/// The division by one million is a change of scale, so it never rounds. Returns `None` only
/// if the amount does not fit a 96-bit decimal (more than ~10^16 USD), which callers treat as
/// malformed input.
pub fn cost_of(tokens: u64, price_per_million: Decimal) -> Option<Decimal> {
    if tokens == 0 {
        return Some(Decimal::ZERO);
    }
    let product = Decimal::from(tokens).checked_mul(price_per_million)?;
    let scale = product.scale() + 6;
    if scale > 28 {
        // Too many decimal places to shift exactly: reduce trailing zeros first.
        let n = product.normalize();
        if n.scale() + 6 > 28 {
            return None;
        }
        return Some(Decimal::from_i128_with_scale(n.mantissa(), n.scale() + 6));
    }
    Some(Decimal::from_i128_with_scale(product.mantissa(), scale))
}

/// A money amount as text: normalised (no trailing zeros), never in exponent notation.
pub fn format(amount: Decimal) -> String {
    amount.normalize().to_string()
}

/// A money amount for people: `$0.0123`, at least two decimals, exact.
pub fn format_usd(amount: Decimal) -> String {
    let n = amount.normalize();
    if n.scale() < 2 {
        format!("${n:.2}")
    } else {
        format!("${n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn cost_is_exact() {
        assert_eq!(cost_of(1, d("2.50")).unwrap(), d("0.0000025"));
        assert_eq!(cost_of(1_000_000, d("2.50")).unwrap(), d("2.5"));
        assert_eq!(cost_of(3, d("0.075")).unwrap(), d("0.000000225"));
        assert_eq!(cost_of(0, d("15")).unwrap(), Decimal::ZERO);
    }

    #[test]
    fn million_small_costs_sum_exactly() {
        let price = d("0.15");
        let mut sum = Decimal::ZERO;
        for _ in 0..1_000_000 {
            sum += cost_of(7, price).unwrap();
        }
        assert_eq!(sum, cost_of(7_000_000, price).unwrap());
        assert_eq!(sum, d("1.05"));
    }

    #[test]
    fn huge_amounts_overflow_to_none() {
        assert!(cost_of(u64::MAX, d("79228162514264337593543950335")).is_none());
    }

    #[test]
    fn formats() {
        assert_eq!(format_usd(d("1.5")), "$1.50");
        assert_eq!(format_usd(d("0.000002500")), "$0.0000025");
        assert_eq!(format(d("2.500")), "2.5");
    }
}
