//! Realistic synthetic events, deterministic for a seed: 100 event types with
//! type-specific payloads, redelivered duplicates, later revisions of an event (sometimes
//! in another partition), and invalid lines of every kind the rules reject.

use std::collections::VecDeque;
use std::io::{self, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// 2025-11-24T00:00:00Z: generated events end here, so output does not depend on the clock.
pub const END_UNIX: i64 = 1_763_942_400;

const DOMAINS: [&str; 10] = [
    "payment",
    "order",
    "user",
    "cart",
    "search",
    "shipment",
    "inventory",
    "review",
    "notification",
    "session",
];
const ENTITIES: [&str; 10] = [
    "item", "account", "request", "batch", "profile", "device", "card", "address", "coupon", "task",
];
const SUBTYPES: [&str; 3] = ["web", "api", "backoffice"];
const ACTIONS: [&str; 3] = ["created", "updated", "completed"];
const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];
const RECENT: usize = 10_000;
const LOCALES: [&str; 6] = ["en-GB", "en-US", "de-DE", "fr-FR", "ja-JP", "es-ES"];
const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "okhttp/4.12.0",
];
const SECTIONS: [&str; 5] = ["product", "checkout", "account", "search", "help"];

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub events: u64,
    pub seed: u64,
    /// Share of lines that repeat an earlier event: half redeliveries (identical line),
    /// half revisions (same uuid, later created_at, changed payload).
    pub duplicate_rate: f64,
    /// Share of lines that are invalid.
    pub invalid_rate: f64,
    /// Days the events' created_at spans, ending at [`END_UNIX`].
    pub days: u32,
    /// Pads each valid event to about this many bytes of JSON with the fields a producer's
    /// context block carries (app, device, page, session, free-form properties): production
    /// events run ~1 KB, the bare ones ~200 bytes. 0: no padding.
    pub event_bytes: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            events: 100_000,
            seed: 42,
            duplicate_rate: 0.05,
            invalid_rate: 0.01,
            days: 3,
            event_bytes: 0,
        }
    }
}

/// What was generated, to check an ingest against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateStats {
    pub lines: u64,
    pub valid: u64,
    pub invalid: u64,
    pub redeliveries: u64,
    pub revisions: u64,
}

impl GenerateStats {
    /// Distinct event_uuids among the valid lines.
    pub fn distinct_events(&self) -> u64 {
        self.valid - self.redeliveries - self.revisions
    }
}

/// The 100 event types (`event_type`, the first part of a name): `domain_entity`.
pub fn event_types() -> Vec<String> {
    DOMAINS
        .iter()
        .flat_map(|d| ENTITIES.iter().map(move |e| format!("{d}_{e}")))
        .collect()
}

struct Recent {
    uuid: String,
    name: usize,
    created_at: f64,
    line: Vec<u8>,
    revision: u32,
}

pub struct Generator {
    options: GenerateOptions,
    rng: ChaCha8Rng,
    /// Padding's own stream: padded events are the bare ones plus fields.
    pad_rng: ChaCha8Rng,
    types: Vec<String>,
    recent: VecDeque<Recent>,
    stats: GenerateStats,
}

impl Generator {
    pub fn new(options: GenerateOptions) -> Generator {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            pad_rng: ChaCha8Rng::seed_from_u64(!options.seed),
            options,
            types: event_types(),
            recent: VecDeque::with_capacity(RECENT),
            stats: GenerateStats::default(),
        }
    }

    pub fn stats(&self) -> &GenerateStats {
        &self.stats
    }

    /// Writes the next line (without its line end) into `line`; `false` when done.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> bool {
        if self.stats.lines >= self.options.events {
            return false;
        }
        line.clear();
        self.stats.lines += 1;
        let roll: f64 = self.rng.random();
        if roll < self.options.invalid_rate {
            self.stats.invalid += 1;
            self.invalid_line(line);
        } else if roll < self.options.invalid_rate + self.options.duplicate_rate
            && !self.recent.is_empty()
        {
            self.stats.valid += 1;
            self.repeat_line(line);
        } else {
            self.stats.valid += 1;
            self.new_line(line);
        }
        true
    }

    /// Writes all lines, newline-terminated.
    pub fn write_all(&mut self, out: &mut impl Write) -> io::Result<()> {
        let mut line = Vec::with_capacity(512);
        while self.next_line(&mut line) {
            line.push(b'\n');
            out.write_all(&line)?;
        }
        out.flush()
    }

    fn uuid(&mut self) -> String {
        let v: u128 = self.rng.random();
        let h = format!("{v:032x}");
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    fn created_at(&mut self) -> f64 {
        let span = i64::from(self.options.days.max(1)) * 86_400;
        let secs = END_UNIX - self.rng.random_range(1..=span);
        if self.rng.random_bool(0.2) {
            secs as f64 + f64::from(self.rng.random_range(0..1000u32)) / 1000.0
        } else {
            secs as f64
        }
    }

    /// The customer behind an event, shared across event types so funnels can join on it:
    /// about 50 events per customer, taken from the uuid so the rng stream is unchanged.
    fn customer(&self, uuid: &str) -> String {
        let customers = (self.options.events / 50).max(1);
        let bits = uuid
            .get(..8)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        format!("c-{:06}", bits % customers)
    }

    /// `name` is the event type's index; subtype and action follow from it and the rng.
    fn payload(&mut self, uuid: &str, name: usize, created_at: f64, revision: u32) -> Vec<u8> {
        let mut obj = Map::new();
        let subtype = SUBTYPES[name % SUBTYPES.len()];
        let action = ACTIONS[(revision as usize).min(ACTIONS.len() - 1)];
        obj.insert("event_uuid".into(), json!(uuid));
        obj.insert(
            "event_name".into(),
            json!(format!("{}:{subtype}:{action}", self.types[name])),
        );
        obj.insert(
            "created_at".into(),
            if created_at.fract() == 0.0 {
                json!(created_at as i64)
            } else {
                json!(created_at)
            },
        );
        // Fields depend on the event type, so each of the 100 types has its own shape.
        let rng = &mut self.rng;
        match name % 5 {
            0 => {
                obj.insert(
                    "amount".into(),
                    json!((rng.random_range(100..1_000_000) as f64) / 100.0),
                );
                obj.insert(
                    "currency".into(),
                    json!(CURRENCIES[rng.random_range(0..CURRENCIES.len())]),
                );
            }
            1 => {
                obj.insert("quantity".into(), json!(rng.random_range(1..20)));
                obj.insert(
                    "sku".into(),
                    json!(format!("SKU-{:06}", rng.random_range(0..1_000_000))),
                );
            }
            2 => {
                obj.insert("user_id".into(), json!(rng.random_range(1..5_000_000u64)));
                obj.insert("is_new".into(), json!(rng.random_bool(0.1)));
            }
            3 => {
                obj.insert(
                    "query".into(),
                    json!(format!("term {}", rng.random_range(0..10_000))),
                );
                obj.insert("results".into(), json!(rng.random_range(0..500)));
            }
            _ => {
                obj.insert(
                    "address".into(),
                    json!({ "country": CURRENCIES[rng.random_range(0..4)].get(..2), "zip": format!("{:05}", rng.random_range(0..99_999)) }),
                );
                obj.insert(
                    "tags".into(),
                    json!(["a", "b"].get(..rng.random_range(0..3)).unwrap_or_default()),
                );
            }
        }
        obj.insert("customer_id".into(), json!(self.customer(uuid)));
        obj.insert(
            format!("{}_id", ENTITIES[name % ENTITIES.len()]),
            json!(name * 1000 + revision as usize),
        );
        if revision > 0 {
            obj.insert("revision".into(), json!(revision));
        }
        self.pad(&mut obj);
        serde_json::to_vec(&Value::Object(obj)).unwrap_or_default()
    }

    /// Pads `obj` to about [`GenerateOptions::event_bytes`]: a `context` object, then
    /// `properties` of random words and numbers, as real payloads are (neither all
    /// repeated text that compresses away nor all random bytes).
    fn pad(&mut self, obj: &mut Map<String, Value>) {
        let target = self.options.event_bytes;
        if target == 0 {
            return;
        }
        let rng = &mut self.pad_rng;
        fn pick(rng: &mut ChaCha8Rng, items: &[&'static str]) -> &'static str {
            items[rng.random_range(0..items.len())]
        }
        let context = json!({
            "locale": pick(rng, &LOCALES),
            "user_agent": pick(rng, &USER_AGENTS),
            "page_url": format!("https://shop.example.com/{}/{}", pick(rng, &SECTIONS), rng.random_range(0..100_000)),
            "app_version": format!("{}.{}.{}", rng.random_range(1..6), rng.random_range(0..20), rng.random_range(0..50)),
            "ip": format!("10.{}.{}.{}", rng.random_range(0..256), rng.random_range(0..256), rng.random_range(1..255)),
            "session_id": format!("{:016x}", rng.random::<u64>()),
        });
        obj.insert("context".into(), context);
        let mut size = serde_json::to_vec(&*obj).map_or(0, |b| b.len());
        let mut properties = Map::new();
        while size + 16 < target {
            let key = format!("p{}", properties.len());
            let value = if rng.random_bool(0.5) {
                json!(rng.random_range(0..1_000_000))
            } else {
                json!(format!("{} {}", pick(rng, &SECTIONS), pick(rng, &LOCALES)))
            };
            size += key.len() + value.to_string().len() + 4;
            properties.insert(key, value);
        }
        if !properties.is_empty() {
            obj.insert("properties".into(), Value::Object(properties));
        }
    }

    fn remember(&mut self, r: Recent) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(r);
    }

    fn new_line(&mut self, line: &mut Vec<u8>) {
        let uuid = self.uuid();
        let name = self.rng.random_range(0..self.types.len());
        let created_at = self.created_at();
        let bytes = self.payload(&uuid, name, created_at, 0);
        line.extend_from_slice(&bytes);
        self.remember(Recent {
            uuid,
            name,
            created_at,
            line: bytes,
            revision: 0,
        });
    }

    fn repeat_line(&mut self, line: &mut Vec<u8>) {
        let i = self.rng.random_range(0..self.recent.len());
        if self.rng.random_bool(0.5) {
            self.stats.redeliveries += 1;
            line.extend_from_slice(&self.recent[i].line);
            return;
        }
        self.stats.revisions += 1;
        let (uuid, name, created_at, revision) = {
            let r = &self.recent[i];
            (r.uuid.clone(), r.name, r.created_at, r.revision + 1)
        };
        // A later revision: up to 30 hours on (so often the next day), sometimes a
        // different event type, i.e. another partition.
        let later = created_at + f64::from(self.rng.random_range(1..30 * 3600u32));
        let name = if self.rng.random_bool(0.2) {
            (name + 10) % self.types.len()
        } else {
            name
        };
        let bytes = self.payload(&uuid, name, later.min((END_UNIX + 86_400) as f64), revision);
        line.extend_from_slice(&bytes);
        let r = &mut self.recent[i];
        r.name = name;
        r.created_at = later;
        r.revision = revision;
        r.line = bytes;
    }

    fn invalid_line(&mut self, line: &mut Vec<u8>) {
        let uuid = self.uuid();
        let kind = self.rng.random_range(0..8);
        let text: Vec<u8> = match kind {
            0 => b"this is not json".to_vec(),
            1 => format!(r#"{{"event_name":"user:account:created","created_at":{END_UNIX}}}"#).into_bytes(),
            2 => format!(r#"{{"event_uuid":"{uuid}","event_name":":account","created_at":{END_UNIX}}}"#).into_bytes(),
            3 => format!(r#"{{"event_uuid":"{uuid}","event_name":"user:account:created","created_at":"{END_UNIX}"}}"#).into_bytes(),
            4 => format!(r#"{{"event_uuid":"{uuid}","event_name":"user:account:created","created_at":-5}}"#).into_bytes(),
            5 => format!(r#"[{{"event_uuid":"{uuid}"}}]"#).into_bytes(),
            6 => {
                let mut b = format!(r#"{{"event_uuid":"{uuid}","event_name":"user:"#).into_bytes();
                b.extend_from_slice(&[0xff, 0xfe]);
                b.extend_from_slice(format!(r#"","created_at":{END_UNIX}}}"#).as_bytes());
                b
            }
            _ => format!(r#"{{"event_uuid":"{uuid}","event_name":"user:account:created","created_at":{END_UNIX}"#).into_bytes(),
        };
        line.extend_from_slice(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(options: GenerateOptions) -> (Vec<u8>, GenerateStats) {
        let mut g = Generator::new(options);
        let mut out = Vec::new();
        g.write_all(&mut out).unwrap();
        (out, g.stats().clone())
    }

    #[test]
    fn deterministic_for_a_seed_and_counts_add_up() {
        let options = GenerateOptions {
            events: 2000,
            seed: 7,
            duplicate_rate: 0.1,
            invalid_rate: 0.05,
            days: 2,
            event_bytes: 0,
        };
        let (a, stats) = all(options.clone());
        let (b, _) = all(options.clone());
        assert_eq!(a, b);
        let (c, _) = all(GenerateOptions { seed: 8, ..options });
        assert_ne!(a, c);
        assert_eq!(stats.lines, 2000);
        assert_eq!(stats.valid + stats.invalid, 2000);
        assert!(
            stats.invalid > 50 && stats.redeliveries > 30 && stats.revisions > 30,
            "{stats:?}"
        );
        assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 2000);
    }

    #[test]
    fn padded_events_are_about_the_size_asked_and_keep_their_fields() {
        let options = |event_bytes| GenerateOptions {
            events: 500,
            invalid_rate: 0.0,
            event_bytes,
            ..GenerateOptions::default()
        };
        let (bare, _) = all(options(0));
        let (padded, _) = all(options(1024));
        let lines: Vec<&[u8]> = padded
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let mean = lines.iter().map(|l| l.len()).sum::<usize>() / lines.len();
        assert!((950..=1100).contains(&mean), "mean {mean} bytes");
        assert!(bare.len() * 3 < padded.len());
        for (bare, padded) in bare.split(|&b| b == b'\n').zip(lines) {
            let bare: Map<String, Value> = serde_json::from_slice(bare).unwrap();
            let padded: Map<String, Value> = serde_json::from_slice(padded).unwrap();
            assert!(padded.contains_key("context"));
            for (key, value) in bare {
                assert_eq!(padded.get(&key), Some(&value), "{key}");
            }
        }
    }

    #[test]
    fn there_are_one_hundred_event_types() {
        let types = event_types();
        assert_eq!(types.len(), 100);
        assert_eq!(
            types.iter().collect::<std::collections::HashSet<_>>().len(),
            100
        );
    }
}
