//! CloudTrail log files (`{"Records": [...]}`) flattened into rows in Rust: the columns
//! `rl.read_cloudtrail` gives, with nested values as canonical JSON text (keys sorted, no
//! spaces, non-ASCII escaped: what Python's `json.dumps(v, sort_keys=True,
//! separators=(",", ":"))` writes).
//!
//! This is the fast path of the Python source, which keeps the file-level rules (links,
//! sizes, unreadable files) and the reading of `eventTime`. A file this path cannot flatten
//! exactly as the Python path would (a record that is not an object, a value of an unexpected
//! type, a whole number beyond 64 bits or a negative zero, whose literal only Python tells
//! apart from a float's, nesting deeper than serde_json reads, a lone surrogate escape) gives
//! `None`, and the Python path reads it, rejecting what it rejects.

use crate::error::{Error, Result};
use arrow_array::builder::{BooleanBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use serde_json::Value;
use std::fmt::Write;
use std::sync::Arc;

/// Top-level text fields kept as columns.
pub const FIELDS: [&str; 15] = [
    "eventVersion",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestID",
    "eventID",
    "eventType",
    "eventCategory",
    "recipientAccountId",
    "sharedEventID",
    "vpcEndpointId",
];
/// Top-level booleans kept as columns.
pub const BOOLEANS: [&str; 2] = ["readOnly", "managementEvent"];
/// The identity's fields kept as `userIdentity.<name>` columns.
pub const IDENTITY: [&str; 7] = [
    "type",
    "arn",
    "principalId",
    "accountId",
    "userName",
    "accessKeyId",
    "invokedBy",
];
/// Nested fields kept as their JSON text.
pub const JSON_FIELDS: [&str; 4] = [
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "resources",
];

/// The rows' columns, in order: `eventTime` (text, read by the caller), the text fields,
/// the booleans, the identity's fields, `userIdentity`, the JSON fields and `other`.
pub fn schema() -> Arc<Schema> {
    let text = |n: String| Field::new(n, DataType::Utf8, true);
    let mut fields = vec![text("eventTime".into())];
    fields.extend(FIELDS.iter().map(|f| text((*f).into())));
    fields.extend(
        BOOLEANS
            .iter()
            .map(|f| Field::new(*f, DataType::Boolean, true)),
    );
    fields.extend(IDENTITY.iter().map(|f| text(format!("userIdentity.{f}"))));
    fields.push(text("userIdentity".into()));
    fields.extend(JSON_FIELDS.iter().map(|f| text((*f).into())));
    fields.push(text("other".into()));
    Arc::new(Schema::new(fields))
}

/// The records of one CloudTrail file as rows, or None when this path does not read the
/// file exactly as the Python path does (which then reads it).
pub fn rows(data: &[u8]) -> Result<Option<RecordBatch>> {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return Ok(None);
    };
    let Some(Value::Array(records)) = doc.as_object().and_then(|o| o.get("Records")) else {
        return Ok(None);
    };
    let n = records.len();
    let mut time = StringBuilder::with_capacity(n, n * 20);
    let mut fields: Vec<StringBuilder> = FIELDS
        .iter()
        .map(|_| StringBuilder::with_capacity(n, n * 16))
        .collect();
    let mut booleans: Vec<BooleanBuilder> = BOOLEANS
        .iter()
        .map(|_| BooleanBuilder::with_capacity(n))
        .collect();
    let mut identity: Vec<StringBuilder> = IDENTITY
        .iter()
        .map(|_| StringBuilder::with_capacity(n, n * 16))
        .collect();
    let mut ident_text = StringBuilder::with_capacity(n, n * 200);
    let mut json: Vec<StringBuilder> = JSON_FIELDS
        .iter()
        .map(|_| StringBuilder::with_capacity(n, n * 32))
        .collect();
    let mut other = StringBuilder::with_capacity(n, n * 64);
    let mut buf = String::new();
    for rec in records {
        let Value::Object(rec) = rec else {
            return Ok(None);
        };
        match rec.get("eventTime") {
            None | Some(Value::Null) => time.append_null(),
            Some(Value::String(s)) => time.append_value(s),
            Some(_) => return Ok(None),
        }
        for (b, name) in fields.iter_mut().zip(FIELDS) {
            if !append_text(b, rec.get(name)) {
                return Ok(None);
            }
        }
        for (b, name) in booleans.iter_mut().zip(BOOLEANS) {
            match rec.get(name) {
                None | Some(Value::Null) => b.append_null(),
                Some(Value::Bool(v)) => b.append_value(*v),
                Some(_) => return Ok(None),
            }
        }
        // An identity that is missing, null or empty counts as none.
        let ident = match rec.get("userIdentity") {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) if o.is_empty() => None,
            Some(Value::Object(o)) => Some(o),
            Some(_) => return Ok(None),
        };
        for (b, name) in identity.iter_mut().zip(IDENTITY) {
            if !append_text(b, ident.and_then(|o| o.get(name))) {
                return Ok(None);
            }
        }
        match ident {
            None => ident_text.append_null(),
            Some(o) => {
                buf.clear();
                if !write_object(&mut buf, o.iter()) {
                    return Ok(None);
                }
                ident_text.append_value(&buf);
            }
        }
        for (b, name) in json.iter_mut().zip(JSON_FIELDS) {
            match rec.get(name) {
                None | Some(Value::Null) => b.append_null(),
                Some(Value::String(s)) => b.append_value(s),
                Some(v) => {
                    buf.clear();
                    if !write_json(&mut buf, v) {
                        return Ok(None);
                    }
                    b.append_value(&buf);
                }
            }
        }
        let mut rest = rec.iter().filter(|(k, _)| !known(k)).peekable();
        if rest.peek().is_none() {
            other.append_null();
        } else {
            buf.clear();
            if !write_object(&mut buf, rest) {
                return Ok(None);
            }
            other.append_value(&buf);
        }
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(time.finish())];
    columns.extend(fields.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(
        booleans
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef),
    );
    columns.extend(
        identity
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef),
    );
    columns.push(Arc::new(ident_text.finish()));
    columns.extend(json.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(other.finish()));
    RecordBatch::try_new(schema(), columns)
        .map(Some)
        .map_err(|e| Error::Internal(e.to_string()))
}

fn known(key: &str) -> bool {
    key == "eventTime"
        || key == "userIdentity"
        || FIELDS.contains(&key)
        || BOOLEANS.contains(&key)
        || JSON_FIELDS.contains(&key)
}

/// Appends a text value (or null); false for a value of another type.
fn append_text(b: &mut StringBuilder, v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => b.append_null(),
        Some(Value::String(s)) => b.append_value(s),
        Some(_) => return false,
    }
    true
}

/// An object's members as canonical JSON (keys sorted: serde_json's map is ordered by key,
/// which for UTF-8 is code point order, as Python sorts); false where the text would not be
/// Python's (see `write_json`).
fn write_object<'a>(
    out: &mut String,
    members: impl Iterator<Item = (&'a String, &'a Value)>,
) -> bool {
    out.push('{');
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, k);
        out.push(':');
        if !write_json(out, v) {
            return false;
        }
    }
    out.push('}');
    true
}

fn write_json(out: &mut String, v: &Value) -> bool {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(f) = n.as_f64().filter(|f| {
                f.is_finite()
                    && !(f.fract() == 0.0 && f.abs() >= 9.2e18)
                    && !(*f == 0.0 && f.is_sign_negative())
            }) {
                // (A whole number beyond 64 bits, or `-0`, is an integer literal serde_json
                // read as a float, or a float literal: only Python tells them apart.)
                write_float(out, f);
            } else {
                return false;
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !write_json(out, item) {
                    return false;
                }
            }
            out.push(']');
        }
        Value::Object(o) => return write_object(out, o.iter()),
    }
    true
}

/// A float as Python's `repr` writes it: the shortest digits that read back as the same
/// number (Rust's and Python's are both the shortest, nearest), in positional notation when
/// the decimal point falls between 4 places left and 16 places right of the first digit
/// (with `.0` if whole), else as `d.ddde+XX`.
fn write_float(out: &mut String, f: f64) {
    let mut sci = format!("{:e}", f.abs());
    if sci.split_once('e').is_some_and(|(m, _)| m.len() >= 18) {
        // Seventeen digits: several strings read back as the number, and where the number
        // lies halfway between two, Python takes the even one. Exact formatting rounds so.
        sci = format!("{:.16e}", f.abs());
    }
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().expect("{:e} exponent");
    let point = exp + 1; // where the decimal point goes, counted from the first digit
    let n = digits.len() as i32;
    if f.is_sign_negative() {
        out.push('-');
    }
    if point <= -4 || point > 16 {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else if point >= n {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - n) as usize));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
}

/// A string as Python's `json.dumps` writes it: ASCII only, `\uXXXX` (lower-case hex, a
/// surrogate pair beyond the first plane) for the rest.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;

    fn column(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
        b.column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    #[test]
    fn records_flatten_into_the_columns() {
        let data = br#"{"Records":[
            {"eventTime":"2023-07-10T11:42:36Z","eventSource":"s3.amazonaws.com","eventName":"GetObject",
             "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/b","sessionContext":{"z":1,"a":[true,null]}},
             "requestParameters":{"b":"x\u00e9\ud83d\ude00","a":"q\"\\\n"},"readOnly":true,"tlsDetails":{"v":"1.2"},"zeta":5},
            {"eventTime":null,"eventName":"Decrypt","userIdentity":{},"resources":"as text","managementEvent":false}
        ]}"#;
        let b = rows(data).unwrap().unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema(), schema());
        assert_eq!(
            column(&b, "eventTime"),
            [Some("2023-07-10T11:42:36Z".into()), None]
        );
        assert_eq!(
            column(&b, "userIdentity"),
            [
                Some(r#"{"arn":"arn:aws:iam::1:user/b","sessionContext":{"a":[true,null],"z":1},"type":"IAMUser"}"#.into()),
                None
            ]
        );
        assert_eq!(
            column(&b, "userIdentity.type"),
            [Some("IAMUser".into()), None]
        );
        assert_eq!(
            column(&b, "requestParameters"),
            [
                Some(r#"{"a":"q\"\\\n","b":"x\u00e9\ud83d\ude00"}"#.into()),
                None
            ]
        );
        assert_eq!(column(&b, "resources"), [None, Some("as text".into())]);
        assert_eq!(
            column(&b, "other"),
            [Some(r#"{"tlsDetails":{"v":"1.2"},"zeta":5}"#.into()), None]
        );
        let ro = b.column_by_name("readOnly").unwrap().as_boolean();
        assert_eq!(ro.iter().collect::<Vec<_>>(), [Some(true), None]);
    }

    #[test]
    fn floats_are_written_as_python_writes_them() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (123456789.125, "123456789.125"),
            (1688989356.123, "1688989356.123"),
            (-2.5e-300, "-2.5e-300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (2.7465376501069061e14, "274653765010690.62"),
        ];
        for (f, text) in cases {
            let mut out = String::new();
            write_float(&mut out, f);
            assert_eq!(out, text, "{f:e}");
        }
        // Read exactly (serde_json's float_roundtrip), then written back the same.
        for literal in [
            "1.7612008047849625",
            "0.30000000000000004",
            "2.2250738585072014e-308",
        ] {
            let data = format!(r#"{{"Records":[{{"requestParameters":{{"x":{literal}}}}}]}}"#);
            let b = rows(data.as_bytes()).unwrap().unwrap();
            assert_eq!(
                column(&b, "requestParameters"),
                [Some(format!(r#"{{"x":{literal}}}"#))]
            );
        }
    }

    #[test]
    fn what_python_reads_otherwise_is_left_to_it() {
        for data in [
            &br#"{"Records":[1]}"#[..],
            br#"{"Records":[{"eventTime":5}]}"#,
            br#"{"Records":[{"eventName":7}]}"#,
            br#"{"Records":[{"readOnly":"yes"}]}"#,
            br#"{"Records":[{"userIdentity":"root"}]}"#,
            br#"{"Records":[{"userIdentity":{"arn":1}}]}"#,
            br#"{"Records":[{"other":"\ud800"}]}"#,
            br#"{"Records":[{"requestParameters":{"x":-0}}]}"#,
            br#"{"Records":[{"requestParameters":{"x":18446744073709551616}}]}"#,
            br#"{"Records":{}}"#,
            br#"[1,2]"#,
            b"not json",
        ] {
            assert!(
                rows(data).unwrap().is_none(),
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        assert_eq!(rows(br#"{"Records":[]}"#).unwrap().unwrap().num_rows(), 0);
    }
}
