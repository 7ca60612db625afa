//! Exact decimal money. Prices are decimal strings in the catalog and stay exact decimals
//! through every multiplication and sum: no float ever touches an amount.

pub use rust_decimal::Decimal;

/// The cost of `tokens` tokens at `price_per_million` (USD per 1M tokens), exactly.
///
/// The division by one million is a change of scale, so it never rounds. Returns `None` only
/// if the amount does not fit a 96-bit decimal (more than ~10^16 USD), which callers treat as
/// malformed input.
#[inline]
pub fn cost_of(tokens: u64, price_per_million: Decimal) -> Option<Decimal> {
    if tokens == 0 {
        return Some(Decimal::ZERO);
    }
    // Fast path (every catalog price): a price whose mantissa fits 64 bits times a token count
    // is one widening multiply; when the product fits 96 bits it is exactly what the general
    // multiplication below returns (same mantissa, same scale), without its case analysis.
    let scale = price_per_million.scale() + 6;
    let m = price_per_million.mantissa();
    if scale <= 28 && m != 0 {
        if let Ok(m_abs) = u64::try_from(m.unsigned_abs()) {
            let p = u128::from(m_abs) * u128::from(tokens);
            if p < 1 << 96 {
                // p < 2^96, so it fits an i128.
                #[allow(clippy::cast_possible_wrap)]
                let p = p as i128;
                return Some(Decimal::from_i128_with_scale(
                    if m < 0 { -p } else { p },
                    scale,
                ));
            }
        }
    }
    cost_of_general(tokens, price_per_million)
}

/// [`cost_of`] by `Decimal`'s general multiplication.
#[cold]
#[inline(never)]
fn cost_of_general(tokens: u64, price_per_million: Decimal) -> Option<Decimal> {
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

/// The most one call may cost: 10^15 USD. No real call comes near it; a cost above it comes
/// from malformed counts or prices and is unknown, not a number to add up. With every call at
/// most this, sums of calls (a tracker's totals, a budget's window, a report) stay exact and
/// cannot overflow `Decimal` (~7.9 x 10^28) before some 7.9 x 10^13 calls, more than a
/// process makes in years; one call's parts, each at most ~7.9 x 10^22, add up without
/// overflow too.
pub const MAX_CALL_COST: Decimal = Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0);

/// `Decimal::from_str` of an amount as the ledger stores it (digits, then maybe a point and
/// digits: at most 18 digits in all), in one pass; `None` for any other text, which
/// `from_str` then reads. The same value and scale.
pub fn parse_stored(text: &str) -> Option<Decimal> {
    let b = text.as_bytes();
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let (mut m, mut scale, mut point) = (0i64, 0u32, false);
    for (i, c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                m = m * 10 + i64::from(c - b'0');
                scale += u32::from(point);
            }
            b'.' if !point && i > 0 && i + 1 < b.len() => point = true,
            _ => return None,
        }
    }
    // At most 18 digits: below 10^18, no overflow.
    (b.len() - usize::from(point) <= 18).then(|| Decimal::new(m, scale))
}

/// `*d <= MAX_CALL_COST`, without the general comparison for the usual amount: one whose
/// mantissa is at most 10^15 is at most 10^15 whatever its scale.
#[inline]
pub fn within_call_cost(d: &Decimal) -> bool {
    d.mantissa() <= 1_000_000_000_000_000 || *d <= MAX_CALL_COST
}

/// `amount`, if it can be (a part of) one call's cost: from zero to [`MAX_CALL_COST`]. The
/// error says why not (a ledger line with a negative or absurd amount).
pub fn call_cost(amount: Decimal) -> Result<Decimal, String> {
    if amount.is_sign_negative() && !amount.is_zero() {
        Err(format!("{amount} is negative"))
    } else if amount > MAX_CALL_COST {
        Err(format!(
            "{amount} is more than one call can cost (10^15 USD)"
        ))
    } else {
        Ok(amount)
    }
}

/// The sum of `parts`, exactly what adding them in order with `+` gives (same value, same
/// scale), in one pass of integer additions; `None` if it overflows `Decimal`.
///
/// A cost is the sum of its components; `Decimal`'s general addition rescales and checks at
/// every step. Here the non-zero parts (non-negative, mantissas below 2^64: every real cost) are
/// brought to the largest scale among them and added as integers. Anything else (a negative
/// part, all parts zero, a sum past 96 bits) is added with `+`.
pub fn sum(parts: &[Decimal]) -> Option<Decimal> {
    let general = || sum_general(parts);
    let nonzero = || parts.iter().filter(|p| !p.is_zero());
    let Some(scale) = nonzero().map(Decimal::scale).max() else {
        return general();
    };
    let mut total: u128 = 0;
    for p in nonzero() {
        if p.is_sign_negative() {
            return general();
        }
        let (Ok(m), Some(power)) = (
            u64::try_from(p.mantissa()),
            10u128.checked_pow(scale - p.scale()),
        ) else {
            return general();
        };
        match u128::from(m)
            .checked_mul(power)
            .and_then(|x| total.checked_add(x))
        {
            Some(t) => total = t,
            None => return general(),
        }
    }
    match i128::try_from(total) {
        Ok(t) if total < 1 << 96 => Some(Decimal::from_i128_with_scale(t, scale)),
        _ => general(),
    }
}

/// [`sum`] by `Decimal`'s checked addition.
#[cold]
#[inline(never)]
fn sum_general(parts: &[Decimal]) -> Option<Decimal> {
    parts
        .iter()
        .try_fold(Decimal::ZERO, |acc, p| acc.checked_add(*p))
}

/// A money amount as text: normalised (no trailing zeros), never in exponent notation.
pub fn format(amount: Decimal) -> String {
    amount.normalize().to_string()
}

/// A currency to show USD amounts in, at a rate the user gives (`CNY` at `7.12` per USD).
/// The ledger stays in USD: only what is shown is converted, exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Currency {
    /// ISO 4217 code, upper case (`CNY`).
    pub code: String,
    /// Units of the currency per 1 USD.
    pub rate: Decimal,
}

impl Currency {
    /// A currency from a code and a rate: the code is three ASCII letters, the rate a
    /// positive decimal.
    pub fn new(code: &str, rate: Decimal) -> Result<Currency, String> {
        let code = code.trim().to_ascii_uppercase();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "currency must be a three-letter ISO 4217 code (CNY, EUR, ...), not '{code}'"
            ));
        }
        if rate <= Decimal::ZERO {
            return Err(format!(
                "rate must be positive (units of {code} per USD), not {rate}"
            ));
        }
        Ok(Currency {
            code,
            rate: rate.normalize(),
        })
    }

    /// `usd` in this currency, exact (`None` on overflow).
    pub fn convert(&self, usd: Decimal) -> Option<Decimal> {
        usd.checked_mul(self.rate).map(|d| d.normalize())
    }

    /// `usd` in this currency for people: `CNY 0.0566`, at least two decimals.
    pub fn format(&self, usd: Decimal) -> String {
        match self.convert(usd) {
            Some(n) if n.scale() < 2 => format!("{} {n:.2}", self.code),
            Some(n) => format!("{} {n}", self.code),
            None => format!("{} (overflow)", self.code),
        }
    }

    /// The line that says which rate was used.
    pub fn describe(&self) -> String {
        format!(
            "Amounts in {} at {} {} per USD (the rate given; the ledger is in USD)",
            self.code, self.rate, self.code
        )
    }
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
    fn stored_amounts_parse_as_from_str_parses_them() {
        for t in [
            "0",
            "0.0",
            "5",
            "0.000465",
            "1.50",
            "000.10",
            "123456789012345678",
            "12345678901234567.8",
            "0.123456789012345678",
            "1234567890123456789",
            "1.",
            ".5",
            "-1",
            "+1",
            "1e5",
            "1..2",
            "1.2.3",
            " 1",
            "",
            "0.00000000000000000001",
        ] {
            let want = Decimal::from_str(t).ok();
            match parse_stored(t) {
                Some(got) => {
                    let want = want.unwrap();
                    assert_eq!(got, want, "{t}");
                    assert_eq!(got.scale(), want.scale(), "{t}");
                    assert_eq!(format!("{got:?}"), format!("{want:?}"), "{t}");
                }
                None => assert!(
                    t.len() > 18
                        || t.starts_with(['-', '+', '.', ' '])
                        || t.contains(['e', ' '])
                        || t.ends_with('.')
                        || t.matches('.').count() > 1
                        || t.is_empty(),
                    "{t} left to from_str"
                ),
            }
        }
    }

    #[test]
    fn currency_conversion_is_exact_and_checked() {
        let cny = Currency::new("cny", d("7.12")).unwrap();
        assert_eq!(cny.code, "CNY");
        assert_eq!(cny.convert(d("0.00795")).unwrap(), d("0.056604"));
        assert_eq!(cny.format(d("2")), "CNY 14.24");
        assert_eq!(cny.format(d("0.00795")), "CNY 0.056604");
        assert!(cny.describe().contains("7.12 CNY per USD"));
        assert!(Currency::new("yuan", d("7")).is_err());
        assert!(Currency::new("CNY", d("0")).is_err());
        assert!(Currency::new("CNY", d("-1")).is_err());
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
    fn fast_path_matches_the_general_multiplication() {
        for price in [
            "2.50",
            "0.075",
            "15",
            "0.000001",
            "-1.25",
            "0",
            "0.00",
            "79228162514.264337593",
        ] {
            let p = d(price);
            for tokens in [1u64, 7, 1532, 1_000_000, 999_999_999_999, u64::MAX] {
                let general = Decimal::from(tokens).checked_mul(p).and_then(|x| {
                    (x.scale() + 6 <= 28)
                        .then(|| Decimal::from_i128_with_scale(x.mantissa(), x.scale() + 6))
                });
                if let Some(g) = general {
                    let fast = cost_of(tokens, p).unwrap();
                    assert_eq!((fast.mantissa(), fast.scale()), (g.mantissa(), g.scale()));
                }
            }
        }
    }

    #[test]
    fn sum_is_the_chain_of_additions() {
        let values = [
            "0",
            "0.000000",
            "0.0000076",
            "0.00007680",
            "0.000247200",
            "1.5",
            "2",
            "1e-20",
            "18446744073709551615",
            "79228162514264337593543950335",
            "-0.5",
            "3.0000",
        ];
        let values: Vec<Decimal> = values
            .iter()
            .map(|v| Decimal::from_scientific(v).unwrap_or_else(|_| d(v)))
            .collect();
        let mut cases: Vec<Vec<Decimal>> = vec![vec![], vec![Decimal::ZERO; 6]];
        for a in &values {
            for b in &values {
                for c in &values {
                    cases.push(vec![*a, *b, Decimal::ZERO, *c, Decimal::ZERO]);
                }
            }
        }
        for parts in cases {
            let chain = parts
                .iter()
                .try_fold(Decimal::ZERO, |acc, p| acc.checked_add(*p));
            let Some(chain) = chain else { continue };
            let fast = sum(&parts).unwrap();
            assert_eq!(
                (fast.mantissa(), fast.scale()),
                (chain.mantissa(), chain.scale()),
                "{parts:?}"
            );
        }
    }

    #[test]
    fn a_sum_that_overflows_is_none_not_a_panic() {
        let max = Decimal::MAX;
        assert_eq!(sum(&[max, Decimal::ONE]), None);
        assert_eq!(sum(&[d("0.5"), max]), None);
        assert_eq!(sum(&[max, -max, Decimal::ONE]), Some(Decimal::ONE));
    }

    #[test]
    fn one_call_costs_zero_to_the_ceiling() {
        assert_eq!(MAX_CALL_COST, Decimal::from(10u64.pow(15)));
        assert_eq!(call_cost(MAX_CALL_COST), Ok(MAX_CALL_COST));
        assert_eq!(call_cost(d("0.0004002")), Ok(d("0.0004002")));
        assert_eq!(call_cost(d("-0")), Ok(d("-0")));
        assert!(call_cost(d("-0.0004002")).unwrap_err().contains("negative"));
        let over = MAX_CALL_COST + d("0.000001");
        assert!(call_cost(over)
            .unwrap_err()
            .contains("more than one call can cost"));
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
