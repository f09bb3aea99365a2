//! The binary encoding of checkpoints and partial states: CBOR (RFC 8949) through serde.
//!
//! CBOR is compact (integers take one to nine bytes, byte strings are stored as they are),
//! keeps every `f64` bit for bit (NaN and infinities included, which JSON cannot), and is
//! self-describing, so a newer reader can still tell what an older writer stored. This module
//! depends on nothing but the error type, so the accumulators and the operators both use it.

use crate::error::{Error, Result};
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Encodes a value.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out)
        .map_err(|e| Error::Internal(format!("cannot encode state: {e}")))?;
    Ok(out)
}

/// Decodes a value written by [`encode`]; `what` names it in the error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    ciborium::from_reader(bytes).map_err(|e| damaged(what, e))
}

/// Decodes the first value of `bytes` and returns it with the bytes after it.
pub fn decode_prefix<'a, T: DeserializeOwned>(
    bytes: &'a [u8],
    what: &str,
) -> Result<(T, &'a [u8])> {
    let mut rest = bytes;
    let value = ciborium::from_reader(&mut rest).map_err(|e| damaged(what, e))?;
    Ok((value, rest))
}

fn damaged(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!(
        "cannot read {what}: {e}; the bytes are damaged or were not written by \
         Operator::snapshot / partial"
    ))
}

/// Bytes stored as one CBOR byte string (a plain `Vec<u8>` would be an array of integers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Blob, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(
                self,
                v: Vec<u8>,
            ) -> std::result::Result<Blob, E> {
                Ok(Blob(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Blob, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Blob(out))
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_leaves_the_rest_and_floats_keep_every_bit() {
        let mut bytes = encode(&(7u32, "x")).unwrap();
        let values = vec![f64::NAN, f64::INFINITY, -0.0, 0.1];
        bytes.extend(encode(&(Blob(vec![1, 2, 255]), values.clone())).unwrap());
        let ((n, s), rest): ((u32, String), _) = decode_prefix(&bytes, "test").unwrap();
        assert_eq!((n, s.as_str()), (7, "x"));
        let (blob, back): (Blob, Vec<f64>) = decode(rest, "test").unwrap();
        assert_eq!(blob.0, vec![1, 2, 255]);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values));
    }
}
