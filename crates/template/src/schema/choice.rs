//! Options that take one of a fixed set of strings, decoded into enums: an unknown value is reported
//! where it is written, with the message Packer gives for it.

use crate::decode::{Decoder, Fields};
use crate::json::Pos;

/// An option whose value is one of a fixed set of strings.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every value, with its spelling in templates.
    const VALUES: &'static [(&'static str, Self)];

    /// The error for any other `value` of option `key`, in Packer's wording.
    fn invalid(key: &str, value: &str) -> String;

    /// The spelling of `self` in templates.
    fn spelling(self) -> &'static str {
        Self::VALUES
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(s, _)| *s)
            .unwrap_or_default()
    }
}

/// Gives a [`Choice`] enum `as_str`, `Display` and comparison with its spelling (`== "stop"`).
macro_rules! spelled {
    ($($t:ty),* $(,)?) => {$(
        impl $t {
            /// The spelling in templates.
            pub fn as_str(&self) -> &'static str {
                $crate::schema::choice::Choice::spelling(*self)
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    )*};
}
pub(crate) use spelled;

/// Parses `value` of option `key`; any other value is reported at `pos` and decodes to `invalid`
/// (chosen so that no other check reacts to it: the error is already reported).
pub fn parse<T: Choice>(d: &mut Decoder, pos: Pos, key: &str, value: &str, invalid: T) -> T {
    match T::VALUES.iter().find(|(s, _)| *s == value) {
        Some((_, v)) => *v,
        None => {
            d.err(pos, T::invalid(key, value));
            invalid
        }
    }
}

/// Decodes option `key` (None when unset, or set to `""`: Go's zero value, which Packer's checks treat
/// as unset — amazon-eks-ami passes `"ssh_interface": "{{user `ssh_interface`}}"` with an empty
/// default); see [`parse`] for `invalid`.
pub fn decode<T: Choice>(
    d: &mut Decoder,
    f: &mut Fields,
    key: &'static str,
    invalid: T,
) -> Option<T> {
    let v = f.take(key)?;
    let s = d.to_string(v, &f.name(key))?;
    (!s.is_empty()).then(|| parse(d, v.pos, key, &s, invalid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Source;
    use crate::json::parse as parse_json;
    use crate::schema::amazon_ebs::{KeyPairType, ShutdownBehavior};

    #[test]
    fn values_decode_and_others_are_reported_at_the_value() {
        let text = "{\"a\": \"rsa\",\n \"b\": \"dsa\", \"e\": \"\"}";
        let src = Source::new("t.json", text.to_string());
        let parsed = parse_json(text).unwrap();
        let members = parsed.value.as_object().unwrap().to_vec();
        let mut d = Decoder::new(&src, "");
        let mut f = Fields::new(&members, parsed.value.pos, "");
        assert_eq!(
            decode(&mut d, &mut f, "a", KeyPairType::Ed25519),
            Some(KeyPairType::Rsa)
        );
        assert_eq!(
            decode(&mut d, &mut f, "b", KeyPairType::Ed25519),
            Some(KeyPairType::Ed25519)
        );
        assert_eq!(decode(&mut d, &mut f, "c", KeyPairType::Rsa), None);
        assert_eq!(
            decode(&mut d, &mut f, "e", KeyPairType::Rsa),
            None,
            "\"\" is unset"
        );
        let diags: Vec<_> = d
            .diags
            .iter()
            .map(|x| (x.line, x.col, x.message.as_str()))
            .collect();
        assert_eq!(
            diags,
            [(
                Some(2),
                Some(7),
                "temporary_key_pair_type requires either rsa or ed25519 as its value"
            )]
        );
    }

    #[test]
    fn spelling_round_trips() {
        for (s, v) in ShutdownBehavior::VALUES {
            assert_eq!(v.as_str(), *s);
            assert_eq!(v.to_string(), *s);
            assert!(*v == *s);
        }
    }
}
