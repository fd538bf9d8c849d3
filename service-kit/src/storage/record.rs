//! Stored records: a version byte, then a prost message. The version lets a
//! later layout be told from this one; an unknown version, an empty value
//! or bytes that do not decode are [`Corrupt`].

use prost::Message;

/// The version byte of every record this layout writes.
pub const VERSION: u8 = 1;

/// A stored value that does not decode as the record it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {problem}")]
pub struct Corrupt {
    pub what: &'static str,
    pub problem: String,
}

/// The record's bytes: [`VERSION`], then the message.
#[must_use]
pub fn encode(message: &impl Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.encoded_len());
    out.push(VERSION);
    message.encode(&mut out).expect("a Vec grows as needed");
    out
}

/// Decodes a record written by [`encode`]; `what` names it in the error.
///
/// # Errors
///
/// [`Corrupt`] for an empty value, an unknown version, or a body that does
/// not decode.
pub fn decode<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, Corrupt> {
    let corrupt = |problem: String| Corrupt { what, problem };
    match bytes.split_first() {
        Some((&VERSION, body)) => M::decode(body).map_err(|e| corrupt(e.to_string())),
        Some((version, _)) => Err(corrupt(format!("unknown record version {version}"))),
        None => Err(corrupt("empty record".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, Message)]
    struct Sample {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(uint64, tag = "2")]
        count: u64,
    }

    #[test]
    fn records_round_trip_and_bad_bytes_are_named() {
        let sample = Sample {
            name: "héllo".into(),
            count: 7,
        };
        let bytes = encode(&sample);
        assert_eq!(bytes[0], VERSION);
        assert_eq!(decode::<Sample>("sample", &bytes).unwrap(), sample);

        let mut newer = bytes.clone();
        newer[0] = 9;
        let e = decode::<Sample>("sample", &newer).unwrap_err();
        assert_eq!(e.to_string(), "sample: unknown record version 9");
        assert_eq!(decode::<Sample>("sample", &[]).unwrap_err().problem, "empty record");
        assert_eq!(
            decode::<Sample>("sample", &[VERSION, 0xff, 0xff]).unwrap_err().what,
            "sample"
        );
    }
}
