//! `zenithSpec.storageSize`: the size of each member's local volume, a Kubernetes quantity of
//! bytes in the plain form people write (`5Gi`, `500M`, `1.5Ti`, `1073741824`), at least one
//! byte and at most [`MAX_STORAGE`]. The schema states the same rule in CEL ([`STORAGE_SIZE_RULE`]); the
//! integration tests compare [`is_storage_size`] with the API server on a list of inputs.
//!
//! Quantities the API server would accept but that mean nothing as a volume's size are refused:
//! a sign (`-5Gi`), a bare suffix (`Gi`, which is zero), an exponent (`9e999999999`), and less
//! than a byte (`100m`, `0.5`).

/// The largest storage size: 1 EiB. The regular expression bounds the value's digits, so the
/// API server never compares a huge quantity.
pub const MAX_STORAGE: &str = "1Ei";

/// [`MAX_STORAGE`] in bytes.
const MAX_STORAGE_BYTES: u128 = 1 << 60;

/// The digits before the point, at most; and after it.
const WHOLE_DIGITS: usize = 18;
const FRACTION_DIGITS: usize = 9;

/// The suffixes and what each multiplies by, the two-letter ones first.
const SUFFIXES: [(&str, u128); 12] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

/// The schema's rule, in CEL: the form, then the value's bounds with the API server's own
/// quantity library.
pub const STORAGE_SIZE_RULE: &str = "self.matches('^(0|[1-9][0-9]{0,17})([.][0-9]{1,9})?\
(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$') && quantity(self).compareTo(quantity('1')) >= 0 && \
quantity(self).compareTo(quantity('1Ei')) <= 0";

/// Whether `text` is a storage size the schema accepts.
pub fn is_storage_size(text: &str) -> bool {
    let (number, multiplier) = SUFFIXES
        .iter()
        .find_map(|(suffix, multiplier)| Some((text.strip_suffix(suffix)?, *multiplier)))
        .unwrap_or((text, 1));
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (number, None),
    };
    let digits = |text: &str, most: usize| {
        (1..=most).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_digit())
    };
    if !digits(whole, WHOLE_DIGITS) || (whole.len() > 1 && whole.starts_with('0')) {
        return false;
    }
    let fraction = fraction.unwrap_or("");
    if !fraction.is_empty() && !digits(fraction, FRACTION_DIGITS) {
        return false;
    }
    if number.ends_with('.') {
        return false;
    }
    // Exact: the value times 10^(fraction digits), against the bound times the same.
    let scale = 10u128.pow(fraction.len() as u32);
    let parse = |text: &str| text.parse::<u128>().unwrap_or(0);
    let scaled = parse(whole) * scale + parse(fraction);
    // At least one byte and at most the bound: scaled × multiplier within scale × [1, bound].
    scaled
        .checked_mul(multiplier)
        .is_some_and(|bytes| (scale..=MAX_STORAGE_BYTES * scale).contains(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sizes_people_write() {
        for text in [
            "5Gi",
            "500M",
            "1",
            "1.5Ti",
            "0.5Gi",
            "1.5",
            "1073741824",
            "1Ei",
            "1024Pi",
            "999999999999999999",
            "1.000000000Ei",
        ] {
            assert!(is_storage_size(text), "{text}");
        }
    }

    #[test]
    fn refuses_what_means_nothing_as_a_size() {
        for text in [
            "",
            "0",
            "0.0",
            "0Gi",
            "0.5",
            "0.000000001",
            "Gi",
            "-5Gi",
            "+5Gi",
            "9e999999999",
            "2e3",
            "100m",
            "5 Gi",
            "5GB",
            "5gi",
            ".5",
            "5.",
            "05",
            "1.0000000001Ei",
            "1025Pi",
            "1152921504606846977",
            "1000000000000000000",
            "1152921504606846976",
            "1.2.3",
            "5Ki1",
            "1.0000000000",
        ] {
            assert!(!is_storage_size(text), "{text}");
        }
    }
}
