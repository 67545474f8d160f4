//! One configuration key's value as given: of the type the key wants, or
//! the kind of JSON value found instead, so the error can name the field
//! and say what it got (serde's own message names neither).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::WireError;

/// A key's value: the wanted type, or the kind of value given instead
/// (`"a number"`, `"a string"`, ...).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Given<T> {
    /// Of the wanted type.
    Value(T),
    /// Something else, by kind.
    Other(&'static str),
}

impl<T> Given<T> {
    /// The value, or the error `<name>: must be <expected>, got <kind>`.
    pub(crate) fn get(self, name: &str, expected: &str) -> Result<T, WireError> {
        match self {
            Given::Value(v) => Ok(v),
            Given::Other(kind) => Err(WireError::Field {
                field: name.to_string(),
                reason: format!("must be {expected}, got {kind}"),
            }),
        }
    }
}

/// A JSON scalar as read, before it is matched to the wanted type.
pub(crate) enum Scalar {
    Bool(bool),
    Unsigned(u64),
    Str(String),
    Other(&'static str),
}

/// The types a key can want.
pub(crate) trait Wanted: Sized {
    /// `scalar` as this type, or its kind.
    fn from_scalar(scalar: Scalar) -> Given<Self>;
}

fn kind(scalar: &Scalar) -> &'static str {
    match scalar {
        Scalar::Bool(_) => "a boolean",
        Scalar::Unsigned(_) => "a number",
        Scalar::Str(_) => "a string",
        Scalar::Other(k) => k,
    }
}

impl Wanted for String {
    fn from_scalar(scalar: Scalar) -> Given<Self> {
        match scalar {
            Scalar::Str(s) => Given::Value(s),
            other => Given::Other(kind(&other)),
        }
    }
}

impl Wanted for u64 {
    fn from_scalar(scalar: Scalar) -> Given<Self> {
        match scalar {
            Scalar::Unsigned(n) => Given::Value(n),
            other => Given::Other(kind(&other)),
        }
    }
}

impl Wanted for bool {
    fn from_scalar(scalar: Scalar) -> Given<Self> {
        match scalar {
            Scalar::Bool(b) => Given::Value(b),
            other => Given::Other(kind(&other)),
        }
    }
}

struct ScalarVisitor<T>(PhantomData<T>);

impl<'de, T: Wanted> Visitor<'de> for ScalarVisitor<T> {
    type Value = Given<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(T::from_scalar(Scalar::Bool(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(T::from_scalar(Scalar::Unsigned(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Ok(T::from_scalar(Scalar::Other("a number"))),
        }
    }

    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Self::Value, E> {
        Ok(T::from_scalar(Scalar::Other("a number")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::from_scalar(Scalar::Str(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(T::from_scalar(Scalar::Str(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(T::from_scalar(Scalar::Other("null")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::from_scalar(Scalar::Other("an array")))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(T::from_scalar(Scalar::Other("an object")))
    }
}

impl<'de, T: Wanted> Deserialize<'de> for Given<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}
