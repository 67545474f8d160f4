//! One configuration key's value as given, so that a value of the wrong
//! type is an error naming the field and saying what it got (serde's own
//! message names neither). The configuration body itself is read as a
//! `Given` too (an object's entries, in order): one visitor for every value
//! keeps the module small.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::WireError;

/// A key's value as given: a JSON scalar, or the kind of anything else.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Given {
    /// Absent, or `null`: the key's default.
    #[default]
    Missing,
    /// `true` or `false`.
    Bool(bool),
    /// A number that is a u64.
    Unsigned(u64),
    /// A string.
    Str(String),
    /// An object's entries, in the order given (a key given twice is kept twice).
    Object(Vec<(String, Given)>),
    /// Anything else, by kind (`"a number"`, `"an array"`, ...).
    Other(&'static str),
}

impl Given {
    /// The kind of value, for an error.
    fn kind(&self) -> &'static str {
        match self {
            Given::Missing => "null",
            Given::Bool(_) => "a boolean",
            Given::Unsigned(_) => "a number",
            Given::Str(_) => "a string",
            Given::Object(_) => "an object",
            Given::Other(k) => k,
        }
    }

    /// The error `<name>: must be <expected>, got <kind>`.
    pub(crate) fn wrong(&self, name: &str, expected: &str) -> WireError {
        WireError::Field {
            field: name.to_string(),
            reason: format!("must be {expected}, got {}", self.kind()),
        }
    }
}

struct GivenVisitor;

impl<'de> Visitor<'de> for GivenVisitor {
    type Value = Given;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Given, E> {
        Ok(Given::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Given, E> {
        Ok(Given::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Given, E> {
        Ok(u64::try_from(v).map_or(Given::Other("a number"), Given::Unsigned))
    }

    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Given, E> {
        Ok(Given::Other("a number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Given, E> {
        Ok(Given::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Given, E> {
        Ok(Given::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Given, E> {
        Ok(Given::Missing)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Given, A::Error> {
        // Nested values are read as `Given` too: one visitor for all.
        while seq.next_element::<Given>()?.is_some() {}
        Ok(Given::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Given, A::Error> {
        let mut entries = Vec::new();
        // A JSON key is always a string: read as a `Given` it is `Str`.
        while let Some((key, value)) = map.next_entry::<Given, Given>()? {
            if let Given::Str(key) = key {
                entries.push((key, value));
            }
        }
        Ok(Given::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Given {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(GivenVisitor)
    }
}
