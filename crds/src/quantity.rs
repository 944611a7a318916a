//! Recognises Kubernetes resource quantities (`5Gi`, `500M`, `1.5`, `2e3`) the way the API
//! server's CEL `isQuantity` does: a port of the acceptance logic of apimachinery's
//! `resource.ParseQuantity` (v0.37), which is looser than its documented grammar. It accepts,
//! for example, a bare suffix (`Gi` is zero) or a bare sign, and refuses `5GB`, `5gi` and `5 Gi`.
//! The integration tests compare this function with the API server on a list of such inputs.

/// The decimal SI suffixes and their powers of ten.
const DECIMAL_SUFFIXES: [(&str, i32); 10] = [
    ("", 0),
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];
/// The binary SI suffixes and their powers of two.
const BINARY_SUFFIXES: [(&str, i32); 6] = [
    ("Ki", 10),
    ("Mi", 20),
    ("Gi", 30),
    ("Ti", 40),
    ("Pi", 50),
    ("Ei", 60),
];
/// The characters a suffix may start with (`parseQuantityString`).
const SUFFIX_CHARACTERS: &[u8] = b"eEinumkKMGTP";
/// The decimal digits an int64 holds without loss (`maxInt64Factors`).
const INT64_DIGITS: i32 = 18;
/// Nanoseconds' power of ten: the smallest scale of the fast path (`Nano`).
const NANO: i32 = -9;

/// The pieces `parseQuantityString` cuts a quantity into.
struct Pieces<'a> {
    value: &'a str,
    numerator: &'a str,
    denominator: &'a str,
    suffix: &'a str,
}

/// How a suffix scales the number.
enum Suffix {
    Decimal(i32),
    Binary(i32),
}

/// Whether `text` is a quantity the API server accepts.
pub fn is_quantity(text: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    let Some(pieces) = cut(text.as_bytes()) else {
        return false;
    };
    let Some(suffix) = interpret(pieces.suffix) else {
        return false;
    };
    fast_path_succeeds(&pieces, &suffix) || is_decimal(pieces.value)
}

/// `parseQuantityString`: sign, numerator, optional denominator, suffix (letters, then an
/// optional sign and digits). `None` where Go returns `ErrFormatWrong`.
fn cut(text: &[u8]) -> Option<Pieces<'_>> {
    let as_str = |range: std::ops::Range<usize>| std::str::from_utf8(&text[range]).ok();
    let end = text.len();
    let mut position = usize::from(matches!(text.first(), Some(b'-' | b'+')));
    while position < end && text[position] == b'0' {
        position += 1;
    }
    if position >= end {
        return Some(Pieces {
            value: "0",
            numerator: "0",
            denominator: "",
            suffix: "",
        });
    }
    let numerator_start = position;
    while position < end && text[position].is_ascii_digit() {
        position += 1;
    }
    let numerator = as_str(numerator_start..position)?;
    let numerator = if numerator.is_empty() { "0" } else { numerator };
    let mut denominator = "";
    if position < end && text[position] == b'.' {
        position += 1;
        let start = position;
        while position < end && text[position].is_ascii_digit() {
            position += 1;
        }
        denominator = as_str(start..position)?;
    }
    let value = as_str(0..position)?;
    let suffix_start = position;
    while position < end && SUFFIX_CHARACTERS.contains(&text[position]) {
        position += 1;
    }
    if position < end && matches!(text[position], b'-' | b'+') {
        position += 1;
    }
    if !text[position..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(Pieces {
        value,
        numerator,
        denominator,
        suffix: as_str(suffix_start..end)?,
    })
}

/// `suffixHandler.interpret`.
fn interpret(suffix: &str) -> Option<Suffix> {
    if let Some((_, exponent)) = DECIMAL_SUFFIXES.iter().find(|(name, _)| *name == suffix) {
        return Some(Suffix::Decimal(*exponent));
    }
    if let Some((_, exponent)) = BINARY_SUFFIXES.iter().find(|(name, _)| *name == suffix) {
        return Some(Suffix::Binary(*exponent));
    }
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .filter(|rest| !rest.is_empty())?;
    // Go parses an int64 and truncates it to int32; so does this.
    let exponent: i64 = exponent.parse().ok()?;
    Some(Suffix::Decimal(exponent as i32))
}

/// Whether `ParseQuantity` returns from its int64 fast path (which cannot fail once taken).
fn fast_path_succeeds(pieces: &Pieces<'_>, suffix: &Suffix) -> bool {
    let digits =
        i32::try_from(pieces.numerator.len() + pieces.denominator.len()).unwrap_or(i32::MAX);
    let (precision, scale, mantissa_bits) = match *suffix {
        Suffix::Decimal(exponent) => (INT64_DIGITS - digits, exponent, 0),
        Suffix::Binary(exponent) if pieces.denominator.is_empty() => {
            let numerator = i32::try_from(pieces.numerator.len()).unwrap_or(i32::MAX);
            // Go computes exponent*3/10 in float32 and truncates; for multiples of ten it is exact.
            (15 - numerator - exponent * 3 / 10 - 1, 0, exponent)
        }
        Suffix::Binary(_) => (-1, 0, 0),
    };
    let denominator = i32::try_from(pieces.denominator.len()).unwrap_or(i32::MAX);
    if precision < 0 || scale.saturating_sub(denominator) < NANO {
        return false;
    }
    let shifted = format!("{}{}", pieces.numerator, pieces.denominator);
    let Ok(value) = shifted.parse::<i64>() else {
        return false;
    };
    value.checked_mul(1_i64 << mantissa_bits).is_some()
}

/// Whether `inf.Dec.SetString` accepts `value` (the slow path): a sign, digits, and an optional
/// fraction.
fn is_decimal(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    !whole.is_empty()
        && whole.bytes().all(|byte| byte.is_ascii_digit())
        && fraction.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::is_quantity;

    #[test]
    fn accepts_quantities() {
        let accepted = [
            "5Gi",
            "5G",
            "1Mi",
            "368Gi",
            "0",
            "1.5",
            ".5",
            "5.",
            "2e3",
            "2E-3",
            "-1",
            "+7k",
            "100m",
            "Gi",
            "-",
            ".",
            "e3",
            "1e-10",
            "12345678901234567890",
        ];
        for text in accepted {
            assert!(is_quantity(text), "{text} is a quantity");
        }
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        let refused = [
            "", "five", "5 Gi", "5GB", "5gi", "1.2.3", "5e", "5e1.5", "--5", "5Ki1", "5Gi ", "x1",
        ];
        for text in refused {
            assert!(!is_quantity(text), "{text} is not a quantity");
        }
    }
}
