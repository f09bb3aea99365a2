//! The Nexmark benchmark's generator: people, auctions and bids as Arrow batches.
//!
//! A port of the reference generator (Apache Beam's and Flink's `nexmark` Java generator, as
//! `risingwavelabs/nexmark-rs` 0.2 writes it in Rust) with its default configuration: one
//! stream of events numbered from 0, of which each 50 hold 1 person, 3 auctions and 46 bids;
//! ids from 1000; hot sellers, auctions, bidders and channels; log-uniform prices; `extra`
//! padding to 200, 500 and 100 bytes on average. Event `n` happens at
//! `base_time + n * 1000 / rate` milliseconds (rounded), in order (the generator's
//! out-of-order groups are not used).
//!
//! Names, cities and states are the Java generator's (capitalised, so Nexmark's q3 finds
//! `'OR'`, `'ID'` and `'CA'`).
//!
//! What differs from the reference, on purpose:
//! - every event draws from its own generator seeded by `(seed, event number)`
//!   ([`crate::rng::Rng`], the same numbers on every platform), so a batch of any event range
//!   is generated alone and the output is the same however the stream is cut;
//! - event times are computed in integers (the reference's `f32` drifts by milliseconds after
//!   a few million events);
//! - `base_time` is an argument: the reference takes the clock, so its data changes per run.
//!
//! The random draws differ from the reference's `SmallRng`, so the rows are not the
//! reference's rows; the distributions (and so the queries' selectivity and key skew) are.

use crate::error::{Error, Result};
use crate::rng::Rng;
use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

/// The three kinds of Nexmark events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A new person (`event number % 50 == 0`).
    Person,
    /// A new auction (`event number % 50` in 1..4).
    Auction,
    /// A bid (`event number % 50` in 4..50).
    Bid,
}

impl Kind {
    /// The kind named `people`/`person`, `auctions`/`auction` or `bids`/`bid`.
    pub fn parse(name: &str) -> Result<Kind> {
        match name {
            "person" | "people" => Ok(Kind::Person),
            "auction" | "auctions" => Ok(Kind::Auction),
            "bid" | "bids" => Ok(Kind::Bid),
            other => Err(Error::Config(format!(
                "unknown Nexmark event kind {other:?}: expected \"people\", \"auctions\" or \"bids\""
            ))),
        }
    }

    /// The kind of event number `n`.
    pub fn of(n: u64) -> Kind {
        match n % DENOMINATOR {
            r if r < PERSON_PROPORTION => Kind::Person,
            r if r < PERSON_PROPORTION + AUCTION_PROPORTION => Kind::Auction,
            _ => Kind::Bid,
        }
    }
}

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const BID_PROPORTION: u64 = 46;
const DENOMINATOR: u64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;
const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u64 = 5;
const ACTIVE_PEOPLE: u64 = 1000;
const PERSON_ID_LEAD: u64 = 10;
const IN_FLIGHT_AUCTIONS: u64 = 100;
const AUCTION_ID_LEAD: u64 = 10;
const HOT_SELLER_RATIO: u64 = 4;
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_BIDDER_RATIO: u64 = 4;
const HOT_CHANNEL_RATIO: u64 = 2;
/// Sellers, auctions and bidders are "hot" in batches of this many ids.
const HOT_BATCH: u64 = 100;
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;
const CHANNELS: usize = 10_000;

const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// The generator's settings: which data, and when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Seeds every event's draws.
    pub seed: u64,
    /// Milliseconds since the epoch (UTC) of event 0.
    pub base_time_ms: i64,
    /// Events per second of event time.
    pub rate: u64,
}

impl Config {
    /// Checked settings.
    pub fn new(seed: u64, base_time_ms: i64, rate: u64) -> Result<Config> {
        if rate == 0 {
            return Err(Error::Config(
                "a Nexmark rate must be a positive number of events per second, e.g. 10_000".into(),
            ));
        }
        Ok(Config {
            seed,
            base_time_ms,
            rate,
        })
    }

    /// The event time of event number `n` (milliseconds since the epoch).
    pub fn time_ms(&self, n: u64) -> i64 {
        let ms = (u128::from(n) * 2000 + u128::from(self.rate)) / (2 * u128::from(self.rate));
        self.base_time_ms
            .saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    fn rng(&self, n: u64) -> Rng {
        Rng::new(n ^ self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// The last person id (from 0) at event `n`: the current one if `n` is a person.
fn last_person(n: u64) -> u64 {
    // With one person in each 50 events, the latest person is the one of the current 50.
    n / DENOMINATOR * PERSON_PROPORTION
}

/// The last auction id (from 0) at event `n`: the current one if `n` is an auction.
fn last_auction(n: u64) -> u64 {
    let epoch = n / DENOMINATOR;
    let offset = n % DENOMINATOR;
    if offset < PERSON_PROPORTION {
        // Before the first auction of all, the "last" one is auction 0 (as the reference,
        // whose unsigned arithmetic would wrap there).
        (epoch * AUCTION_PROPORTION).saturating_sub(1)
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        epoch * AUCTION_PROPORTION + AUCTION_PROPORTION - 1
    } else {
        epoch * AUCTION_PROPORTION + offset - PERSON_PROPORTION
    }
}

/// A person among the active ones (or a few ids ahead, not yet created), from 0.
fn next_person(n: u64, rng: &mut Rng) -> u64 {
    let people = last_person(n) + 1;
    let active = people.min(ACTIVE_PEOPLE);
    people - active + rng.below(active + PERSON_ID_LEAD)
}

/// An auction among those in flight (or a few ids ahead), from 0.
fn next_auction(n: u64, rng: &mut Rng) -> u64 {
    let max = last_auction(n);
    let min = max.saturating_sub(IN_FLIGHT_AUCTIONS);
    min + rng.below(max - min + 1 + AUCTION_ID_LEAD)
}

/// `len` lowercase letters.
fn letters(rng: &mut Rng, len: usize, out: &mut String) {
    let mut bits = 0u64;
    let mut left = 0;
    for _ in 0..len {
        if left == 0 {
            bits = rng.next_u64();
            left = 12; // 26^12 < 2^64: twelve letters from one draw
        }
        let wide = u128::from(bits) * 26;
        out.push(char::from(b'a' + (wide >> 64) as u8));
        bits = wide as u64;
        left -= 1;
    }
}

/// Padding that brings an event of `current` bytes to `average` bytes on average.
fn extra(rng: &mut Rng, current: usize, average: usize, out: &mut String) {
    if current > average {
        return;
    }
    let wanted = average - current;
    let delta = (wanted + 2) / 5;
    let len = wanted - delta
        + if delta == 0 {
            0
        } else {
            rng.below(2 * delta as u64) as usize
        };
    letters(rng, len, out);
}

/// A price in cents, log-uniform from $1 to $1M.
fn price(rng: &mut Rng) -> i64 {
    (10f64.powf(rng.uniform() * 6.0) * 100.0).round() as i64
}

/// Three to four letters, some of them `_`.
fn url_part(rng: &mut Rng, out: &mut String) {
    let len = 3 + rng.below(2);
    for _ in 0..len {
        if rng.below(13) == 0 {
            out.push('_');
        } else {
            out.push(char::from(b'a' + rng.below(26) as u8));
        }
    }
}

fn base_url(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut url = String::from("https://www.nexmark.com/");
    for _ in 0..3 {
        url_part(&mut rng, &mut url);
        url.push('/');
    }
    url.push_str("item.htm?query=1");
    url
}

/// The 10,000 ordinary channels and their urls (nine in ten carry a `channel_id`), and the
/// four hot channels' urls.
struct Channels {
    names: Vec<String>,
    urls: Vec<String>,
    hot_urls: Vec<String>,
}

fn channels() -> &'static Channels {
    static CHANNELS_MAP: OnceLock<Channels> = OnceLock::new();
    CHANNELS_MAP.get_or_init(|| {
        let mut names = Vec::with_capacity(CHANNELS);
        let mut urls = Vec::with_capacity(CHANNELS);
        for i in 0..CHANNELS {
            let mut url = base_url(i as u64);
            if Rng::new(!(i as u64)).below(10) > 0 {
                let id = i64::from((i as i32).reverse_bits()).abs();
                let _ = write!(url, "&channel_id={id}");
            }
            names.push(format!("channel-{i}"));
            urls.push(url);
        }
        let hot_urls = (0..HOT_CHANNELS.len() as u64)
            .map(|i| base_url(u64::MAX - i))
            .collect();
        Channels {
            names,
            urls,
            hot_urls,
        }
    })
}

fn ts_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, None),
        false,
    )
}

/// The columns of one kind of event (Nexmark's names, in snake case).
pub fn schema(kind: Kind) -> SchemaRef {
    let int = |n: &str| Field::new(n, DataType::Int64, false);
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(match kind {
        Kind::Person => vec![
            int("id"),
            text("name"),
            text("email_address"),
            text("credit_card"),
            text("city"),
            text("state"),
            ts_field("date_time"),
            text("extra"),
        ],
        Kind::Auction => vec![
            int("id"),
            text("item_name"),
            text("description"),
            int("initial_bid"),
            int("reserve"),
            ts_field("date_time"),
            ts_field("expires"),
            int("seller"),
            int("category"),
            text("extra"),
        ],
        Kind::Bid => vec![
            int("auction"),
            int("bidder"),
            int("price"),
            text("channel"),
            text("url"),
            ts_field("date_time"),
            text("extra"),
        ],
    }))
}

/// How many events of `kind` fall in the event numbers `[start, end)`.
pub fn count(kind: Kind, start: u64, end: u64) -> u64 {
    let below = |n: u64| -> u64 {
        let (full, rest) = (n / DENOMINATOR, n % DENOMINATOR);
        let (lo, hi) = match kind {
            Kind::Person => (0, PERSON_PROPORTION),
            Kind::Auction => (PERSON_PROPORTION, PERSON_PROPORTION + AUCTION_PROPORTION),
            Kind::Bid => (PERSON_PROPORTION + AUCTION_PROPORTION, DENOMINATOR),
        };
        full * (hi - lo) + rest.clamp(lo, hi) - lo
    };
    below(end.max(start)) - below(start)
}

/// The events of `kind` among the event numbers `[start, end)`, in order, as one batch.
pub fn generate(config: &Config, kind: Kind, start: u64, end: u64) -> Result<RecordBatch> {
    let rows = count(kind, start, end) as usize;
    let numbers = (start..end.max(start)).filter(|&n| Kind::of(n) == kind);
    let columns = match kind {
        Kind::Person => people(config, numbers, rows),
        Kind::Auction => auctions(config, numbers, rows),
        Kind::Bid => bids(config, numbers, rows),
    };
    RecordBatch::try_new(schema(kind), columns).map_err(|e| Error::Internal(e.to_string()))
}

fn text_builder(rows: usize, bytes: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows * bytes)
}

fn people(config: &Config, numbers: impl Iterator<Item = u64>, rows: usize) -> Vec<ArrayRef> {
    let mut id = Int64Builder::with_capacity(rows);
    let mut name = text_builder(rows, 12);
    let mut email = text_builder(rows, 17);
    let mut card = text_builder(rows, 19);
    let mut city = text_builder(rows, 8);
    let mut state = text_builder(rows, 2);
    let mut time = TimestampMillisecondBuilder::with_capacity(rows);
    let mut pad = text_builder(rows, AVG_PERSON_BYTES - 60);
    let mut s = String::with_capacity(AVG_PERSON_BYTES);
    for n in numbers {
        let rng = &mut config.rng(n);
        id.append_value(last_person(n) as i64 + FIRST_PERSON_ID);
        let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize];
        s.clear();
        let _ = write!(s, "{first} {last}");
        name.append_value(&s);
        let mut size = 8 + s.len();
        s.clear();
        letters(rng, 7, &mut s);
        s.push('@');
        letters(rng, 5, &mut s);
        s.push_str(".com");
        email.append_value(&s);
        size += s.len();
        s.clear();
        for i in 0..4 {
            let _ = write!(
                s,
                "{}{:04}",
                if i > 0 { " " } else { "" },
                rng.below(10_000)
            );
        }
        card.append_value(&s);
        size += s.len();
        let c = US_CITIES[rng.below(US_CITIES.len() as u64) as usize];
        let st = US_STATES[rng.below(US_STATES.len() as u64) as usize];
        city.append_value(c);
        state.append_value(st);
        size += c.len() + st.len();
        time.append_value(config.time_ms(n));
        s.clear();
        extra(rng, size, AVG_PERSON_BYTES, &mut s);
        pad.append_value(&s);
    }
    vec![
        Arc::new(id.finish()),
        Arc::new(name.finish()),
        Arc::new(email.finish()),
        Arc::new(card.finish()),
        Arc::new(city.finish()),
        Arc::new(state.finish()),
        Arc::new(time.finish()),
        Arc::new(pad.finish()),
    ]
}

fn auctions(config: &Config, numbers: impl Iterator<Item = u64>, rows: usize) -> Vec<ArrayRef> {
    // An auction lasts until about the time of the auction `IN_FLIGHT_AUCTIONS` ahead.
    let ahead = IN_FLIGHT_AUCTIONS * DENOMINATOR / AUCTION_PROPORTION;
    let mut id = Int64Builder::with_capacity(rows);
    let mut item = text_builder(rows, 20);
    let mut description = text_builder(rows, 100);
    let mut initial = Int64Builder::with_capacity(rows);
    let mut reserve = Int64Builder::with_capacity(rows);
    let mut time = TimestampMillisecondBuilder::with_capacity(rows);
    let mut expires = TimestampMillisecondBuilder::with_capacity(rows);
    let mut seller = Int64Builder::with_capacity(rows);
    let mut category = Int64Builder::with_capacity(rows);
    let mut pad = text_builder(rows, AVG_AUCTION_BYTES - 168);
    let mut s = String::with_capacity(AVG_AUCTION_BYTES);
    for n in numbers {
        let rng = &mut config.rng(n);
        let at = config.time_ms(n);
        id.append_value(last_auction(n) as i64 + FIRST_AUCTION_ID);
        s.clear();
        letters(rng, 20, &mut s);
        item.append_value(&s);
        s.clear();
        letters(rng, 100, &mut s);
        description.append_value(&s);
        let first_bid = price(rng);
        initial.append_value(first_bid);
        reserve.append_value(first_bid + price(rng));
        time.append_value(at);
        let horizon = (config.time_ms(n + ahead) - at).max(0) as u64;
        let length = 1 + rng.below(horizon.saturating_mul(2).max(1)) as i64;
        expires.append_value(at.saturating_add(length));
        let who = if rng.below(HOT_SELLER_RATIO) > 0 {
            last_person(n) / HOT_BATCH * HOT_BATCH
        } else {
            next_person(n, rng)
        };
        seller.append_value(who as i64 + FIRST_PERSON_ID);
        category.append_value(FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES) as i64);
        s.clear();
        extra(rng, 8 + 20 + 100 + 5 * 8, AVG_AUCTION_BYTES, &mut s);
        pad.append_value(&s);
    }
    vec![
        Arc::new(id.finish()),
        Arc::new(item.finish()),
        Arc::new(description.finish()),
        Arc::new(initial.finish()),
        Arc::new(reserve.finish()),
        Arc::new(time.finish()),
        Arc::new(expires.finish()),
        Arc::new(seller.finish()),
        Arc::new(category.finish()),
        Arc::new(pad.finish()),
    ]
}

fn bids(config: &Config, numbers: impl Iterator<Item = u64>, rows: usize) -> Vec<ArrayRef> {
    let map = channels();
    let mut auction = Int64Builder::with_capacity(rows);
    let mut bidder = Int64Builder::with_capacity(rows);
    let mut amount = Int64Builder::with_capacity(rows);
    let mut channel = text_builder(rows, 10);
    let mut url = text_builder(rows, 70);
    let mut time = TimestampMillisecondBuilder::with_capacity(rows);
    let mut pad = text_builder(rows, AVG_BID_BYTES - 32);
    let mut s = String::with_capacity(AVG_BID_BYTES);
    for n in numbers {
        let rng = &mut config.rng(n);
        let a = if rng.below(HOT_AUCTION_RATIO) > 0 {
            last_auction(n) / HOT_BATCH * HOT_BATCH
        } else {
            next_auction(n, rng)
        };
        auction.append_value(a as i64 + FIRST_AUCTION_ID);
        let b = if rng.below(HOT_BIDDER_RATIO) > 0 {
            last_person(n) / HOT_BATCH * HOT_BATCH + 1
        } else {
            next_person(n, rng)
        };
        bidder.append_value(b as i64 + FIRST_PERSON_ID);
        amount.append_value(price(rng));
        if rng.below(HOT_CHANNEL_RATIO) > 0 {
            let i = rng.below(HOT_CHANNELS.len() as u64) as usize;
            channel.append_value(HOT_CHANNELS[i]);
            url.append_value(&map.hot_urls[i]);
        } else {
            let i = rng.below(CHANNELS as u64) as usize;
            channel.append_value(&map.names[i]);
            url.append_value(&map.urls[i]);
        }
        time.append_value(config.time_ms(n));
        s.clear();
        extra(rng, 4 * 8, AVG_BID_BYTES, &mut s);
        pad.append_value(&s);
    }
    vec![
        Arc::new(auction.finish()),
        Arc::new(bidder.finish()),
        Arc::new(amount.finish()),
        Arc::new(channel.finish()),
        Arc::new(url.finish()),
        Arc::new(time.finish()),
        Arc::new(pad.finish()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMillisecondType};

    fn config() -> Config {
        Config::new(0, 1_700_000_000_000, 10_000).unwrap()
    }

    fn ints(b: &RecordBatch, name: &str) -> Vec<i64> {
        b.column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }

    fn times(b: &RecordBatch, name: &str) -> Vec<i64> {
        b.column_by_name(name)
            .unwrap()
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .to_vec()
    }

    #[test]
    fn the_kinds_split_every_fifty_events_one_three_and_forty_six() {
        let mut seen = [0u64; 3];
        for n in 0..5_000 {
            seen[Kind::of(n) as usize] += 1;
        }
        assert_eq!(seen, [100, 300, 4_600]);
        for (start, end) in [(0, 0), (0, 1), (3, 97), (49, 51), (7, 10_007), (10, 3)] {
            for kind in [Kind::Person, Kind::Auction, Kind::Bid] {
                let brute = (start..end.max(start))
                    .filter(|&n| Kind::of(n) == kind)
                    .count();
                assert_eq!(
                    count(kind, start, end),
                    brute as u64,
                    "{kind:?} {start}..{end}"
                );
            }
        }
    }

    #[test]
    fn any_cut_of_the_event_numbers_gives_the_same_rows() {
        let c = config();
        for kind in [Kind::Person, Kind::Auction, Kind::Bid] {
            let whole = generate(&c, kind, 0, 3_000).unwrap();
            let parts: Vec<RecordBatch> = [(0, 1), (1, 8), (8, 1_234), (1_234, 3_000)]
                .iter()
                .map(|&(a, b)| generate(&c, kind, a, b).unwrap())
                .collect();
            let joined = arrow_select::concat::concat_batches(&schema(kind), &parts).unwrap();
            assert_eq!(whole, joined, "{kind:?}");
            assert_eq!(whole, generate(&c, kind, 0, 3_000).unwrap());
        }
        let other = Config::new(1, c.base_time_ms, c.rate).unwrap();
        assert_ne!(
            generate(&c, Kind::Bid, 0, 500).unwrap(),
            generate(&other, Kind::Bid, 0, 500).unwrap()
        );
    }

    #[test]
    fn ids_times_and_references_follow_the_generator() {
        let c = config();
        let n = 100_000;
        let people = generate(&c, Kind::Person, 0, n).unwrap();
        let auctions = generate(&c, Kind::Auction, 0, n).unwrap();
        let bids = generate(&c, Kind::Bid, 0, n).unwrap();
        // Ids are consecutive from 1000, and each event's time is base + n / rate.
        let pid = ints(&people, "id");
        assert_eq!(pid, (1000..1000 + pid.len() as i64).collect::<Vec<_>>());
        let aid = ints(&auctions, "id");
        assert_eq!(aid, (1000..1000 + aid.len() as i64).collect::<Vec<_>>());
        let person_times = times(&people, "date_time");
        for (i, t) in person_times.iter().enumerate() {
            assert_eq!(*t, c.base_time_ms + (i as i64 * 50) / 10);
        }
        let bid_times = times(&bids, "date_time");
        assert!(bid_times.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*bid_times.last().unwrap(), c.time_ms(n - 1));
        // Bids name auctions and bidders that exist or are at most a few ids ahead.
        let (max_a, max_p) = (*aid.last().unwrap(), *pid.last().unwrap());
        assert!(ints(&bids, "auction")
            .iter()
            .all(|&a| (1000..=max_a + 10).contains(&a)));
        assert!(ints(&bids, "bidder")
            .iter()
            .all(|&p| (1000..=max_p + 10).contains(&p)));
        assert!(ints(&auctions, "seller")
            .iter()
            .all(|&p| (1000..=max_p + 10).contains(&p)));
        assert!(ints(&auctions, "category")
            .iter()
            .all(|&k| (10..15).contains(&k)));
        // Half the bids go to the hot auction (the latest id rounded down to 100).
        let hot = ints(&bids, "auction")
            .iter()
            .filter(|&&a| a % 100 == 0)
            .count();
        let share = hot as f64 / bids.num_rows() as f64;
        assert!((0.5..0.53).contains(&share), "{share}");
        // Prices are log-uniform from $1 to $1M, and the reserve is above the first bid.
        let prices = ints(&bids, "price");
        assert!(prices.iter().all(|&p| (100..=100_000_000).contains(&p)));
        let under_100 = prices.iter().filter(|&&p| p < 10_000).count() as f64 / prices.len() as f64;
        assert!((under_100 - 1.0 / 3.0).abs() < 0.01, "{under_100}");
        let reserves = ints(&auctions, "reserve");
        assert!(ints(&auctions, "initial_bid")
            .iter()
            .zip(&reserves)
            .all(|(i, r)| i < r));
        // Auctions expire after they start, within about twice the horizon of 100 auctions.
        let (start, end) = (times(&auctions, "date_time"), times(&auctions, "expires"));
        assert!(start
            .iter()
            .zip(&end)
            .all(|(s, e)| e > s && e - s <= 2 * 1_667 / 10 + 1));
    }

    #[test]
    fn padding_brings_events_to_their_average_size() {
        let c = config();
        let bids = generate(&c, Kind::Bid, 0, 50_000).unwrap();
        let extra = bids.column_by_name("extra").unwrap().as_string::<i32>();
        let mean =
            extra.iter().map(|s| s.unwrap().len()).sum::<usize>() as f64 / bids.num_rows() as f64;
        assert!((mean - 68.0).abs() < 1.0, "{mean}");
        let channels = bids.column_by_name("channel").unwrap().as_string::<i32>();
        let hot = channels
            .iter()
            .filter(|c| HOT_CHANNELS.contains(&c.unwrap()))
            .count() as f64;
        assert!((hot / bids.num_rows() as f64 - 0.5).abs() < 0.02);
    }

    #[test]
    fn a_zero_rate_is_refused_and_an_unknown_kind_named() {
        assert!(Config::new(0, 0, 0).is_err());
        let e = Kind::parse("bidders").unwrap_err().to_string();
        assert!(e.contains("bidders") && e.contains("\"bids\""), "{e}");
    }
}
