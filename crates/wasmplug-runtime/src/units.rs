//! Durations and sizes as people write them: `200ms`, `2s`, `16MiB`, or a
//! plain number (milliseconds, bytes). One parser per kind serves command-line
//! flags, environment variables and manifests alike, so `--timeout 200ms`,
//! `WASMPLUG_BODY_TIMEOUT_MS=2s` and `call_timeout_ms = "200ms"` are read by
//! the same code. Every accepted value is exact: no fractions, no rounding,
//! and a value too large for its setting is a [`UnitError::TooLarge`], never
//! a wrapped number.
//!
//! ```
//! use std::time::Duration;
//! use wasmplug_runtime::units::{parse_duration, parse_size};
//!
//! assert_eq!(parse_duration("200ms")?, Duration::from_millis(200));
//! assert_eq!(parse_duration("2s")?, Duration::from_secs(2));
//! assert_eq!(parse_duration("750")?, Duration::from_millis(750));
//! assert_eq!(parse_size::<u64>("16MiB")?, 16 << 20);
//! assert_eq!(parse_size::<usize>("4096")?, 4096);
//! assert!(parse_duration("5 parsecs").is_err());
//! # Ok::<(), wasmplug_runtime::units::UnitError>(())
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected, Visitor};

/// Which kind of value a [`UnitError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// A duration: `ms` or `s`, a plain number being milliseconds.
    Duration,
    /// A size: `B`, `KiB`, `MiB` or `GiB`, a plain number being bytes.
    Size,
}

impl Quantity {
    /// The units this kind accepts, as the error messages name them.
    pub fn accepted_units(self) -> &'static str {
        match self {
            Quantity::Duration => "ms or s (a plain number is milliseconds)",
            Quantity::Size => "B, KiB, MiB or GiB (a plain number is bytes)",
        }
    }

    /// The unit its largest value is given in.
    fn base_unit(self) -> &'static str {
        match self {
            Quantity::Duration => "ms",
            Quantity::Size => "bytes",
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quantity::Duration => "duration",
            Quantity::Size => "size",
        })
    }
}

/// Why a duration or a size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    /// There is no whole, non-negative number where the value starts (empty,
    /// negative, a fraction, a word).
    #[error("`{text}` is not a {quantity}: write a whole number followed by {}", quantity.accepted_units())]
    NotANumber {
        /// What was given.
        text: String,
        /// What was expected.
        quantity: Quantity,
    },
    /// The number is followed by something that is not one of the units.
    #[error("`{text}` has an unknown unit `{unit}`: a {quantity} takes {}", quantity.accepted_units())]
    UnknownUnit {
        /// What was given.
        text: String,
        /// The unit as written.
        unit: String,
        /// What was expected.
        quantity: Quantity,
    },
    /// The value is larger than its setting can hold.
    #[error("`{text}` is too large: this {quantity} can be at most {max} {}", quantity.base_unit())]
    TooLarge {
        /// What was given.
        text: String,
        /// What was expected.
        quantity: Quantity,
        /// The largest value the setting holds, in milliseconds or bytes.
        max: u64,
    },
}

impl UnitError {
    /// Whether a duration or a size was expected.
    pub fn quantity(&self) -> Quantity {
        match self {
            UnitError::NotANumber { quantity, .. }
            | UnitError::UnknownUnit { quantity, .. }
            | UnitError::TooLarge { quantity, .. } => *quantity,
        }
    }
}

/// An unsigned integer type a size is stored in (`u64` or `usize`).
pub trait SizeType: Sized {
    /// The largest number of bytes it holds.
    const MAX_BYTES: u64;
    /// `bytes` as this type, if it fits.
    fn from_bytes(bytes: u64) -> Option<Self>;
}

impl SizeType for u64 {
    const MAX_BYTES: u64 = u64::MAX;

    fn from_bytes(bytes: u64) -> Option<Self> {
        Some(bytes)
    }
}

impl SizeType for usize {
    const MAX_BYTES: u64 = if usize::BITS < u64::BITS {
        // Lossless: usize is narrower than u64 on this branch.
        usize::MAX as u64
    } else {
        u64::MAX
    };

    fn from_bytes(bytes: u64) -> Option<Self> {
        usize::try_from(bytes).ok()
    }
}

/// Reads a duration: `200ms`, `2s`, or a plain number of milliseconds. A
/// space may separate the number from its unit. The result is a whole number
/// of milliseconds no larger than `u64::MAX`, so it always survives being
/// written back as milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let (number, unit) = split(text, Quantity::Duration)?;
    let millis_per_unit = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        _ => return Err(unknown_unit(text, unit, Quantity::Duration)),
    };
    let millis = number
        .checked_mul(millis_per_unit)
        .ok_or_else(|| too_large(text, Quantity::Duration, u64::MAX))?;
    Ok(Duration::from_millis(millis))
}

/// Reads a size: `16MiB`, `512KiB`, `1GiB`, `4096B`, or a plain number of
/// bytes. A space may separate the number from its unit. Units are binary
/// (`KiB` = 1024 bytes) and spelled exactly so: `MB` is refused rather than
/// guessed at.
pub fn parse_size<T: SizeType>(text: &str) -> Result<T, UnitError> {
    let (number, unit) = split(text, Quantity::Size)?;
    let bytes_per_unit: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(unknown_unit(text, unit, Quantity::Size)),
    };
    number
        .checked_mul(bytes_per_unit)
        .and_then(T::from_bytes)
        .ok_or_else(|| too_large(text, Quantity::Size, T::MAX_BYTES))
}

/// Deserializes a duration written as a whole number of milliseconds
/// (`call_timeout_ms = 1000`) or as a string [`parse_duration`] reads
/// (`call_timeout_ms = "1s"`). For `#[serde(deserialize_with = ...)]`.
pub fn deserialize_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor)
}

/// Deserializes a size written as a whole number of bytes
/// (`max_memory_bytes = 67108864`) or as a string [`parse_size`] reads
/// (`max_memory_bytes = "64MiB"`). For `#[serde(deserialize_with = ...)]`.
pub fn deserialize_size<'de, D: Deserializer<'de>, T: SizeType>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_any(SizeVisitor(PhantomData))
}

/// [`deserialize_duration`] for an optional setting (with `#[serde(default)]`).
pub fn deserialize_optional_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    deserialize_duration(deserializer).map(Some)
}

/// [`deserialize_size`] for an optional setting (with `#[serde(default)]`).
pub fn deserialize_optional_size<'de, D: Deserializer<'de>, T: SizeType>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    deserialize_size(deserializer).map(Some)
}

/// Splits `text` into its leading whole number and the unit after it.
fn split(text: &str, quantity: Quantity) -> Result<(u64, &str), UnitError> {
    let trimmed = text.trim();
    let digits = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, rest) = trimmed.split_at(digits);
    let unit = rest.trim_start();
    // `1.5s`, `1_000`, `-5` and `abc` have no whole number before a unit.
    let unit_starts_well = unit.chars().next().is_none_or(|c| c.is_ascii_alphabetic());
    if number.is_empty() || !unit_starts_well {
        return Err(UnitError::NotANumber {
            text: text.to_owned(),
            quantity,
        });
    }
    // Only ASCII digits remain, so the one way to fail is overflow.
    let number = number.parse::<u64>().map_err(|_| too_large(text, quantity, u64::MAX))?;
    Ok((number, unit))
}

fn unknown_unit(text: &str, unit: &str, quantity: Quantity) -> UnitError {
    UnitError::UnknownUnit {
        text: text.to_owned(),
        unit: unit.to_owned(),
        quantity,
    }
}

fn too_large(text: &str, quantity: Quantity, max: u64) -> UnitError {
    UnitError::TooLarge {
        text: text.to_owned(),
        quantity,
        max,
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a whole number of milliseconds, or a string such as \"200ms\" or \"2s\"")
    }

    fn visit_u64<E: de::Error>(self, millis: u64) -> Result<Duration, E> {
        Ok(Duration::from_millis(millis))
    }

    fn visit_i64<E: de::Error>(self, millis: i64) -> Result<Duration, E> {
        u64::try_from(millis)
            .map(Duration::from_millis)
            .map_err(|_| E::invalid_value(Unexpected::Signed(millis), &self))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse_duration(text).map_err(E::custom)
    }
}

struct SizeVisitor<T>(PhantomData<T>);

impl<T: SizeType> Visitor<'_> for SizeVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a whole number of bytes, or a string such as \"64MiB\" or \"512KiB\"")
    }

    fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<T, E> {
        T::from_bytes(bytes).ok_or_else(|| E::custom(too_large(&bytes.to_string(), Quantity::Size, T::MAX_BYTES)))
    }

    fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<T, E> {
        match u64::try_from(bytes) {
            Ok(bytes) => self.visit_u64(bytes),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(bytes), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        parse_size(text).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(text: &str) -> Result<Duration, UnitError> {
        parse_duration(text)
    }

    fn size(text: &str) -> Result<u64, UnitError> {
        parse_size::<u64>(text)
    }

    #[test]
    fn durations_in_every_accepted_form() {
        for (text, millis) in [
            ("0", 0),
            ("250", 250),
            ("200ms", 200),
            ("200 ms", 200),
            (" 3s ", 3000),
            ("1s", 1000),
            ("0s", 0),
            ("18446744073709551615", u64::MAX),
            ("18446744073709551615ms", u64::MAX),
            ("18446744073709551s", 18_446_744_073_709_551_000),
        ] {
            assert_eq!(duration(text), Ok(Duration::from_millis(millis)), "{text}");
        }
    }

    #[test]
    fn sizes_in_every_accepted_form() {
        for (text, bytes) in [
            ("0", 0),
            ("4096", 4096),
            ("4096B", 4096),
            ("1KiB", 1 << 10),
            ("512 KiB", 512 << 10),
            ("16MiB", 16 << 20),
            ("4GiB", 4 << 30),
            ("99999999GiB", 99_999_999 << 30),
            ("17179869183GiB", 17_179_869_183 << 30),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(size(text), Ok(bytes), "{text}");
        }
        assert_eq!(parse_size::<usize>("64MiB"), Ok(64 << 20));
    }

    #[test]
    fn malformed_values_are_not_numbers() {
        for text in [
            "", " ", "ms", "abc", "-5", "-5ms", "+5", "1.5s", "0.5", "1_000", "1,000",
        ] {
            assert_eq!(
                duration(text),
                Err(UnitError::NotANumber {
                    text: text.to_owned(),
                    quantity: Quantity::Duration
                }),
                "{text:?}"
            );
            assert_eq!(
                size(text),
                Err(UnitError::NotANumber {
                    text: text.to_owned(),
                    quantity: Quantity::Size
                }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn unknown_units_are_named() {
        for (text, unit) in [
            ("5 parsecs", "parsecs"),
            ("5m", "m"),
            ("5min", "min"),
            ("5MS", "MS"),
            ("5us", "us"),
            ("5s5", "s5"),
            ("5ms extra", "ms extra"),
            ("16MiB", "MiB"),
        ] {
            assert_eq!(
                duration(text),
                Err(UnitError::UnknownUnit {
                    text: text.to_owned(),
                    unit: unit.to_owned(),
                    quantity: Quantity::Duration
                }),
                "{text:?}"
            );
        }
        for (text, unit) in [
            ("16MB", "MB"),
            ("16mib", "mib"),
            ("16M", "M"),
            ("1TiB", "TiB"),
            ("1kib", "kib"),
            ("0x10", "x10"),
            ("200ms", "ms"),
        ] {
            assert_eq!(
                size(text),
                Err(UnitError::UnknownUnit {
                    text: text.to_owned(),
                    unit: unit.to_owned(),
                    quantity: Quantity::Size
                }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        for text in [
            "18446744073709551616",
            "18446744073709552s",
            "99999999999999999999999ms",
        ] {
            assert_eq!(
                duration(text),
                Err(UnitError::TooLarge {
                    text: text.to_owned(),
                    quantity: Quantity::Duration,
                    max: u64::MAX
                }),
                "{text}"
            );
        }
        // 2^34 GiB is 2^64 bytes, one more than u64 holds.
        for text in [
            "18446744073709551616",
            "17179869184GiB",
            "99999999999GiB",
            "18014398509481984KiB",
        ] {
            assert_eq!(
                size(text),
                Err(UnitError::TooLarge {
                    text: text.to_owned(),
                    quantity: Quantity::Size,
                    max: u64::MAX
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_read_as_one_line_naming_the_units() {
        let error = duration("5 parsecs").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`5 parsecs` has an unknown unit `parsecs`: a duration takes ms or s (a plain number is milliseconds)"
        );
        let error = size("1.5MiB").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`1.5MiB` is not a size: write a whole number followed by B, KiB, MiB or GiB (a plain number is bytes)"
        );
        let error = size("17179869184GiB").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`17179869184GiB` is too large: this size can be at most 18446744073709551615 bytes"
        );
    }
}
