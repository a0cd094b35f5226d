//! De-aggregation of Kinesis Producer Library (KPL) records.
//!
//! The KPL packs many user records into one Kinesis record: 4 magic bytes, a protobuf
//! `AggregatedRecord`, then the MD5 of that protobuf. Only the two messages of that format
//! are needed, so they are decoded here rather than through a protobuf code generator.
//! Format: <https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md>

use md5::{Digest, Md5};

pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

/// One user record inside an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord<'a> {
    pub partition_key: &'a str,
    pub data: &'a [u8],
}

/// Why an aggregate could not be read; its bytes go to quarantine with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt KPL aggregate: {0}")]
pub struct CorruptAggregate(String);

/// Whether `data` claims to be an aggregate: the magic bytes, and room for a digest.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.len() >= MAGIC.len() + DIGEST_LEN && data.starts_with(&MAGIC)
}

/// The user records of an aggregate, in order. Call only where [`is_aggregated`] holds.
pub fn deaggregate(data: &[u8]) -> Result<Vec<UserRecord<'_>>, CorruptAggregate> {
    let corrupt = |what: &str| CorruptAggregate(what.to_string());
    if !is_aggregated(data) {
        return Err(corrupt("too short or no magic bytes"));
    }
    let (message, digest) = data[MAGIC.len()..].split_at(data.len() - MAGIC.len() - DIGEST_LEN);
    if Md5::digest(message).as_slice() != digest {
        return Err(corrupt("MD5 checksum does not match"));
    }
    let mut keys = Vec::new();
    let mut raw_records = Vec::new();
    for field in Fields::new(message) {
        match field.map_err(corrupt)? {
            (1, Value::Bytes(key)) => {
                keys.push(std::str::from_utf8(key).map_err(|_| corrupt("partition key not UTF-8"))?)
            }
            (3, Value::Bytes(record)) => raw_records.push(record),
            _ => {}
        }
    }
    let mut records = Vec::with_capacity(raw_records.len());
    for record in raw_records {
        let (mut key_index, mut payload) = (None, None);
        for field in Fields::new(record) {
            match field.map_err(corrupt)? {
                (1, Value::Varint(index)) => key_index = Some(index),
                (3, Value::Bytes(bytes)) => payload = Some(bytes),
                _ => {}
            }
        }
        let key_index = key_index.ok_or_else(|| corrupt("record without partition key index"))?;
        let partition_key = usize::try_from(key_index)
            .ok()
            .and_then(|i| keys.get(i))
            .ok_or_else(|| corrupt("partition key index out of range"))?;
        records.push(UserRecord {
            partition_key,
            data: payload.ok_or_else(|| corrupt("record without data"))?,
        });
    }
    Ok(records)
}

/// Packs user records the way the KPL does: for producers, tests and benchmarks.
pub fn aggregate(records: &[UserRecord<'_>]) -> Vec<u8> {
    let mut keys: Vec<&str> = Vec::new();
    let mut message = Vec::new();
    let mut encoded_records = Vec::new();
    for record in records {
        let index = match keys.iter().position(|k| *k == record.partition_key) {
            Some(i) => i,
            None => {
                keys.push(record.partition_key);
                keys.len() - 1
            }
        };
        let mut encoded = Vec::new();
        put_varint_field(&mut encoded, 1, index as u64);
        put_bytes_field(&mut encoded, 3, record.data);
        encoded_records.push(encoded);
    }
    for key in &keys {
        put_bytes_field(&mut message, 1, key.as_bytes());
    }
    for encoded in &encoded_records {
        put_bytes_field(&mut message, 3, encoded);
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&message);
    out.extend_from_slice(&Md5::digest(&message));
    out
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates the (field number, value) pairs of one protobuf message.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(message: &'a [u8]) -> Self {
        Fields { rest: message }
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.rest.split_first().ok_or("truncated varint")?;
            self.rest = rest;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes")
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], &'static str> {
        let len = usize::try_from(len).map_err(|_| "length too large")?;
        if len > self.rest.len() {
            return Err("field runs past the end of the message");
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    fn field(&mut self) -> Result<(u64, Value<'a>), &'static str> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.take(8).map(|_| Value::Fixed)?,
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Value::Fixed)?,
            _ => return Err("unsupported protobuf wire type"),
        };
        Ok((key >> 3, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_varint(out, field << 3);
    put_varint(out, value);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_records_are_not_aggregates() {
        assert!(!is_aggregated(br#"{"event_uuid":"a"}"#));
        assert!(!is_aggregated(&MAGIC));
    }

    #[test]
    fn corruption_is_reported_not_ignored() {
        let records = [UserRecord {
            partition_key: "k",
            data: b"{}",
        }];
        let mut packed = aggregate(&records);
        let last = packed.len() - 1;
        packed[last] ^= 1;
        assert_eq!(
            deaggregate(&packed).unwrap_err().to_string(),
            "corrupt KPL aggregate: MD5 checksum does not match"
        );
        // A valid digest over a truncated message: the protobuf itself is broken.
        let mut message = aggregate(&records)[MAGIC.len()..][..6].to_vec();
        let digest = Md5::digest(&message);
        let mut truncated = MAGIC.to_vec();
        truncated.append(&mut message);
        truncated.extend_from_slice(&digest);
        assert!(deaggregate(&truncated).is_err());
    }

    proptest! {
        #[test]
        fn aggregate_then_deaggregate_is_identity(
            items in prop::collection::vec(("[a-c]{1,3}", prop::collection::vec(any::<u8>(), 0..300)), 1..20)
        ) {
            let records: Vec<UserRecord> = items
                .iter()
                .map(|(k, d)| UserRecord { partition_key: k, data: d })
                .collect();
            let packed = aggregate(&records);
            prop_assert!(is_aggregated(&packed));
            prop_assert_eq!(deaggregate(&packed).unwrap(), records);
        }

        #[test]
        fn arbitrary_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut data = MAGIC.to_vec();
            data.extend_from_slice(&tail);
            let _ = deaggregate(&data);
        }
    }
}
