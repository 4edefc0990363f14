//! The model a proxied request names in its body (forward auth's per-model rate limits; model
//! names themselves are `rate_limits::ModelName`).

/// The largest forwarded body searched for its `model`. A larger one (or one the proxy says it
/// cut short) cannot be vouched for: a later `model` field could name another model.
pub const MAX_BODY_SCAN_BYTES: usize = 256 * 1024;

/// What a forwarded request body says about its model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyModel {
    /// Not a JSON object, or one without a top-level `model`: the body names no model.
    Unnamed,
    /// The body's one top-level `model`.
    Named(String),
    /// More than one top-level `model` with different values, or one that is not a string:
    /// servers disagree on which one counts (most take the last), so the request is refused.
    Ambiguous,
    /// Larger than [`MAX_BODY_SCAN_BYTES`] or cut short by the proxy: a `model` could follow
    /// what was read.
    Unreadable,
}

/// The top-level `model` of an OpenAI-style JSON request body that a proxy forwarded
/// (`complete`: false when the proxy says it sent only the start of the body).
pub fn model_in_body(body: &[u8], complete: bool) -> BodyModel {
    if body.is_empty() {
        return BodyModel::Unnamed;
    }
    if !complete || body.len() > MAX_BODY_SCAN_BYTES {
        return BodyModel::Unreadable;
    }
    let mut stream = serde_json::Deserializer::from_slice(body);
    match serde::Deserializer::deserialize_any(&mut stream, TopLevel) {
        Ok(found) if stream.end().is_ok() => found,
        // Not JSON, or JSON followed by more: not a request body we can read.
        _ => BodyModel::Unnamed,
    }
}

/// Reads a JSON value, collecting the top-level `model` fields of an object.
struct TopLevel;

impl<'de> serde::de::Visitor<'de> for TopLevel {
    type Value = BodyModel;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<BodyModel, A::Error> {
        use serde::de::IgnoredAny;
        use serde_json::Value;
        let mut found = BodyModel::Unnamed;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != "model" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            found = match (found, map.next_value::<Value>()?) {
                (BodyModel::Unnamed, Value::String(model)) => BodyModel::Named(model),
                (BodyModel::Named(first), Value::String(model)) if first == model => {
                    BodyModel::Named(first)
                }
                _ => BodyModel::Ambiguous,
            };
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<BodyModel, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(BodyModel::Unnamed)
    }

    fn visit_bool<E>(self, _: bool) -> Result<BodyModel, E> {
        Ok(BodyModel::Unnamed)
    }
    fn visit_i64<E>(self, _: i64) -> Result<BodyModel, E> {
        Ok(BodyModel::Unnamed)
    }
    fn visit_u64<E>(self, _: u64) -> Result<BodyModel, E> {
        Ok(BodyModel::Unnamed)
    }
    fn visit_f64<E>(self, _: f64) -> Result<BodyModel, E> {
        Ok(BodyModel::Unnamed)
    }
    fn visit_str<E>(self, _: &str) -> Result<BodyModel, E> {
        Ok(BodyModel::Unnamed)
    }
    fn visit_unit<E>(self) -> Result<BodyModel, E> {
        Ok(BodyModel::Unnamed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_of_a_chat_request_is_found_wherever_it_stands() {
        let first = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
        let last = br#"{"messages":[{"role":"user","content":"hi"}],"stream":true,"model":"o1"}"#;
        assert_eq!(
            model_in_body(first, true),
            BodyModel::Named("gpt-4o".into())
        );
        assert_eq!(model_in_body(last, true), BodyModel::Named("o1".into()));
        assert_eq!(
            model_in_body(br#"{"model":"o1","model":"o1"}"#, true),
            BodyModel::Named("o1".into())
        );
    }

    #[test]
    fn two_different_models_or_a_model_that_is_not_a_string_are_ambiguous() {
        for body in [
            &br#"{"model":"gpt-4o-mini","messages":[],"model":"gpt-4o"}"#[..],
            br#"{"model":7}"#,
            br#"{"model":null}"#,
        ] {
            let text = String::from_utf8_lossy(body);
            assert_eq!(model_in_body(body, true), BodyModel::Ambiguous, "{text}");
        }
    }

    #[test]
    fn a_body_too_large_or_cut_short_cannot_vouch_for_its_model() {
        let mut body = br#"{"model":"gpt-4o","input":""#.to_vec();
        body.extend(std::iter::repeat_n(b'x', MAX_BODY_SCAN_BYTES));
        body.extend(br#""}"#);
        assert_eq!(model_in_body(&body, true), BodyModel::Unreadable);
        let small = br#"{"model":"gpt-4o"}"#;
        assert_eq!(model_in_body(small, false), BodyModel::Unreadable);
    }

    #[test]
    fn bodies_without_a_top_level_model_name_none() {
        for body in [
            &b""[..],
            b"not json",
            b"[1,2]",
            b"\"gpt-4o\"",
            br#"{"input":"hi"}"#,
            br#"{"nested":{"model":"gpt-4o"}}"#,
            br#"{"model":"gpt-4o"} trailing"#,
        ] {
            let text = String::from_utf8_lossy(body);
            assert_eq!(model_in_body(body, true), BodyModel::Unnamed, "{text}");
        }
    }
}
