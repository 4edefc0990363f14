//! Per-model request limits: the names of models, the six limits of OpenAI's
//! `project.rate_limit`, and the `RATE_LIMIT_MODELS` setting that lists the configured models
//! with their default limits.
//!
//! Policy: a project's limit for a model is the operator's override where one is set, else the
//! model's default from the setting. Every model has `max_requests_per_1_minute` and
//! `max_tokens_per_1_minute` (upstream always shows both); the other four exist only where the
//! setting or an override gives them. A model the setting does not list (one first seen at
//! forward auth) has the defaults of the `*` entry.
//!
//! The setting: entries separated by `;` or newlines, each a model name followed by
//! whitespace-separated `limit=value` pairs, e.g.
//! `gpt-4o rpm=500 tpm=30000 rpd=10000; llama3:8b rpm=60; * rpm=600 tpm=150000`.
//! Limits are the upstream field names or their short forms (`rpm`, `tpm`, `ipm`, `apm`, `rpd`,
//! `batch_tpd`), non-negative integers. A model's entry inherits what it leaves out from `*`,
//! whose own defaults, unless given, are [`DEFAULT_REQUESTS_PER_MINUTE`] and
//! [`DEFAULT_TOKENS_PER_MINUTE`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::Invalid;

/// Requests per minute of a model nothing configures.
pub const DEFAULT_REQUESTS_PER_MINUTE: i64 = 600;
/// Tokens per minute of a model nothing configures.
pub const DEFAULT_TOKENS_PER_MINUTE: i64 = 150_000;
/// The longest model name, in characters.
pub const MAX_MODEL_CHARS: usize = 128;
/// The prefix of a rate limit's id: `rl-<model>`, as upstream's examples.
pub const RATE_LIMIT_ID_PREFIX: &str = "rl-";

/// The name of a model: 1 to 128 ASCII letters, digits and `-._:/@+` (enough for OpenAI's,
/// Hugging Face's `org/name` and Ollama's `name:tag`), so that `rl-<model>` is a plain id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelName(String);

impl ModelName {
    /// Checks `raw`; `param` names the field in the error.
    pub fn parse(param: &'static str, raw: &str) -> Result<Self, Invalid> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_MODEL_CHARS
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:/@+".contains(&b));
        if !valid {
            return Err(Invalid::new(
                param,
                format!(
                    "`{param}` must be a model name of 1 to {MAX_MODEL_CHARS} ASCII letters, \
                     digits and `-._:/@+`."
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The model of the rate limit id `rl-<model>`, if it is one.
    pub fn from_rate_limit_id(id: &str) -> Option<Self> {
        let model = id.strip_prefix(RATE_LIMIT_ID_PREFIX)?;
        Self::parse("rate_limit_id", model).ok()
    }

    /// `rl-<model>`.
    pub fn rate_limit_id(&self) -> String {
        format!("{RATE_LIMIT_ID_PREFIX}{}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The six limits of a model, each `None` where there is none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests_per_1_minute: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_1_minute: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_images_per_1_minute: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_audio_megabytes_per_1_minute: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests_per_1_day: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_1_day_max_input_tokens: Option<i64>,
}

/// The names of the six limits, as upstream spells them, with their short forms.
pub const LIMIT_NAMES: [(&str, &str); 6] = [
    ("max_requests_per_1_minute", "rpm"),
    ("max_tokens_per_1_minute", "tpm"),
    ("max_images_per_1_minute", "ipm"),
    ("max_audio_megabytes_per_1_minute", "apm"),
    ("max_requests_per_1_day", "rpd"),
    ("batch_1_day_max_input_tokens", "batch_tpd"),
];

impl Limits {
    /// The limit named `name` (upstream's name or its short form).
    fn slot(&mut self, name: &str) -> Option<&mut Option<i64>> {
        let index = LIMIT_NAMES
            .iter()
            .position(|(long, short)| *long == name || *short == name)?;
        Some(match index {
            0 => &mut self.max_requests_per_1_minute,
            1 => &mut self.max_tokens_per_1_minute,
            2 => &mut self.max_images_per_1_minute,
            3 => &mut self.max_audio_megabytes_per_1_minute,
            4 => &mut self.max_requests_per_1_day,
            _ => &mut self.batch_1_day_max_input_tokens,
        })
    }

    /// Each limit of `self`, or of `under` where `self` has none.
    pub fn over(self, under: Limits) -> Limits {
        Limits {
            max_requests_per_1_minute: self
                .max_requests_per_1_minute
                .or(under.max_requests_per_1_minute),
            max_tokens_per_1_minute: self
                .max_tokens_per_1_minute
                .or(under.max_tokens_per_1_minute),
            max_images_per_1_minute: self
                .max_images_per_1_minute
                .or(under.max_images_per_1_minute),
            max_audio_megabytes_per_1_minute: self
                .max_audio_megabytes_per_1_minute
                .or(under.max_audio_megabytes_per_1_minute),
            max_requests_per_1_day: self.max_requests_per_1_day.or(under.max_requests_per_1_day),
            batch_1_day_max_input_tokens: self
                .batch_1_day_max_input_tokens
                .or(under.batch_1_day_max_input_tokens),
        }
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// The `RATE_LIMIT_MODELS` setting: the configured models and everyone's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitModels {
    /// The `*` entry over the built-in defaults.
    fallback: Limits,
    /// Each configured model's own entry (without what it inherits).
    models: BTreeMap<ModelName, Limits>,
}

impl Default for RateLimitModels {
    fn default() -> Self {
        Self {
            fallback: Self::built_in(),
            models: BTreeMap::new(),
        }
    }
}

impl RateLimitModels {
    fn built_in() -> Limits {
        Limits {
            max_requests_per_1_minute: Some(DEFAULT_REQUESTS_PER_MINUTE),
            max_tokens_per_1_minute: Some(DEFAULT_TOKENS_PER_MINUTE),
            ..Limits::default()
        }
    }

    /// Reads the setting (see the module's documentation); the error says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut star = Limits::default();
        for entry in raw.split([';', '\n']) {
            let mut words = entry.split_whitespace();
            let Some(model) = words.next() else {
                continue;
            };
            let mut limits = Limits::default();
            for word in words {
                let (name, value) = word.split_once('=').ok_or_else(|| {
                    format!("`{word}` in the entry of `{model}` is not `limit=value`")
                })?;
                let slot = limits.slot(name).ok_or_else(|| {
                    format!(
                        "`{name}` is not a limit; use rpm, tpm, ipm, apm, rpd, batch_tpd or \
                         upstream's names such as max_requests_per_1_minute"
                    )
                })?;
                let value: i64 = value.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    format!("`{name}` of `{model}` must be a non-negative integer")
                })?;
                if slot.replace(value).is_some() {
                    return Err(format!("`{name}` is given twice for `{model}`"));
                }
            }
            if model == "*" {
                star = limits;
                continue;
            }
            let name = ModelName::parse("model", model).map_err(|_| {
                format!(
                    "`{model}` is not a model name (1 to {MAX_MODEL_CHARS} ASCII letters, digits \
                     and `-._:/@+`)"
                )
            })?;
            if parsed.models.insert(name, limits).is_some() {
                return Err(format!("`{model}` is listed twice"));
            }
        }
        parsed.fallback = star.over(Self::built_in());
        Ok(parsed)
    }

    /// The default limits of `model`: its entry over the `*` entry.
    pub fn defaults_for(&self, model: &ModelName) -> Limits {
        self.models
            .get(model)
            .copied()
            .unwrap_or_default()
            .over(self.fallback)
    }

    /// The configured models, in name order.
    pub fn configured(&self) -> impl Iterator<Item = &ModelName> {
        self.models.keys()
    }

    /// Whether the setting lists `model`.
    pub fn lists(&self, model: &ModelName) -> bool {
        self.models.contains_key(model)
    }
}

impl std::str::FromStr for RateLimitModels {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        Self::parse(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str) -> ModelName {
        ModelName::parse("model", name).unwrap()
    }

    #[test]
    fn a_models_entry_inherits_what_it_leaves_out_from_the_star_entry() {
        let setting = RateLimitModels::parse(
            "gpt-4o rpm=500 rpd=10000;\n llama3:8b max_tokens_per_1_minute=7 ; * tpm=9000 ipm=3",
        )
        .unwrap();

        assert_eq!(
            setting.defaults_for(&model("gpt-4o")),
            Limits {
                max_requests_per_1_minute: Some(500),
                max_tokens_per_1_minute: Some(9000),
                max_images_per_1_minute: Some(3),
                max_requests_per_1_day: Some(10000),
                ..Limits::default()
            }
        );
        let llama = setting.defaults_for(&model("llama3:8b"));
        assert_eq!(llama.max_tokens_per_1_minute, Some(7));
        assert_eq!(
            llama.max_requests_per_1_minute,
            Some(DEFAULT_REQUESTS_PER_MINUTE)
        );
        let unlisted = setting.defaults_for(&model("mistral"));
        assert_eq!(unlisted.max_tokens_per_1_minute, Some(9000));
        assert_eq!(unlisted.max_requests_per_1_day, None);
        let names: Vec<&str> = setting.configured().map(ModelName::as_str).collect();
        assert_eq!(names, ["gpt-4o", "llama3:8b"]);
    }

    #[test]
    fn without_a_setting_every_model_gets_the_built_in_defaults() {
        let empty = RateLimitModels::parse("").unwrap();
        assert_eq!(empty, RateLimitModels::default());
        let limits = empty.defaults_for(&model("any"));
        assert_eq!(
            limits.max_requests_per_1_minute,
            Some(DEFAULT_REQUESTS_PER_MINUTE)
        );
        assert_eq!(
            limits.max_tokens_per_1_minute,
            Some(DEFAULT_TOKENS_PER_MINUTE)
        );
        assert_eq!(limits.max_requests_per_1_day, None);
    }

    #[test]
    fn malformed_settings_are_refused_with_a_reason() {
        for (raw, why) in [
            ("gpt-4o rpm", "no value"),
            ("gpt-4o rpm=-1", "negative"),
            ("gpt-4o rpm=1.5", "not an integer"),
            ("gpt-4o speed=3", "unknown limit"),
            (
                "gpt-4o rpm=1 max_requests_per_1_minute=2",
                "the same limit twice",
            ),
            ("gpt-4o rpm=1; gpt-4o rpm=2", "the same model twice"),
            ("bad\u{7}model rpm=1", "not a model name"),
        ] {
            assert!(RateLimitModels::parse(raw).is_err(), "{why}");
        }
    }

    #[test]
    fn rate_limit_ids_name_their_model() {
        let name = model("meta-llama/Llama-3.1-8B");
        assert_eq!(name.rate_limit_id(), "rl-meta-llama/Llama-3.1-8B");
        assert_eq!(
            ModelName::from_rate_limit_id(&name.rate_limit_id()),
            Some(name)
        );
        assert_eq!(ModelName::from_rate_limit_id("rl_ada"), None);
        assert_eq!(ModelName::from_rate_limit_id("rl-"), None);
        assert_eq!(ModelName::from_rate_limit_id("rl-a b"), None);
    }
}
