//! Where the hub and the cache are, read from the same environment variables as `huggingface_hub`
//! so that both tools share one cache and one login.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::HubError;

/// The public hub, used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Seconds to wait for a connection or for the next bytes, as `huggingface_hub`'s default for
/// `HF_HUB_DOWNLOAD_TIMEOUT`.
const DEFAULT_TIMEOUT_SECS: f64 = 10.0;

/// How to reach the hub and where to cache its files.
///
/// Build it with [`HubConfig::from_env`] (or [`HubConfig::from_lookup`] in tests), then change
/// fields as the command line says. The token is left out of `Debug` output.
#[derive(Clone)]
pub struct HubConfig {
    /// Base URL of the hub, without a trailing `/` (`HF_ENDPOINT`).
    pub endpoint: String,
    /// Cache directory holding the `models--{org}--{name}` folders (`HF_HUB_CACHE`, or
    /// `$HF_HOME/hub`).
    pub cache_dir: PathBuf,
    /// Use only the cache, never the network (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// Access token sent as `Authorization: Bearer` to the hub (`HF_TOKEN`, or the token file that
    /// `huggingface-cli login` writes).
    pub token: Option<String>,
    /// Limit on connecting and on each wait for more bytes (`HF_HUB_DOWNLOAD_TIMEOUT`).
    pub timeout: Duration,
    /// Whether downloads draw a progress bar on standard error.
    pub progress: ProgressMode,
}

/// Whether downloads draw a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on standard error when it is a terminal, nothing otherwise.
    Auto,
    /// Never a bar (logging still reports each download).
    Hidden,
}

impl HubConfig {
    /// Reads the configuration from the process environment; see [`HubConfig::from_lookup`].
    pub fn from_env() -> Result<HubConfig, HubError> {
        HubConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from variables given by `lookup`, following `huggingface_hub`:
    ///
    /// - `HF_ENDPOINT`: the hub URL, default [`DEFAULT_ENDPOINT`].
    /// - `HF_HUB_CACHE`: the cache directory; otherwise `$HF_HOME/hub`, where `HF_HOME` defaults to
    ///   `$XDG_CACHE_HOME/huggingface` and then to `~/.cache/huggingface`.
    /// - `HF_HUB_OFFLINE`: offline when `1`, `true`, `yes` or `on` (any case).
    /// - `HF_TOKEN`: the access token; otherwise the file at `HF_TOKEN_PATH` or `$HF_HOME/token`
    ///   when it exists (the only file this function reads).
    /// - `HF_HUB_DOWNLOAD_TIMEOUT`: seconds, default 10.
    ///
    /// Empty values count as unset. The progress bar is [`ProgressMode::Auto`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<HubConfig, HubError> {
        let lookup = |name: &str| lookup(name).filter(|value| !value.is_empty());

        let hf_home = match lookup("HF_HOME") {
            Some(hf_home) => Some(PathBuf::from(hf_home)),
            None => match lookup("XDG_CACHE_HOME") {
                Some(xdg_cache_home) => Some(Path::new(&xdg_cache_home).join("huggingface")),
                None => lookup("HOME")
                    .or_else(|| lookup("USERPROFILE"))
                    .map(|home| Path::new(&home).join(".cache").join("huggingface")),
            },
        };
        let cache_dir = match (lookup("HF_HUB_CACHE"), &hf_home) {
            (Some(hub_cache), _) => PathBuf::from(hub_cache),
            (None, Some(hf_home)) => hf_home.join("hub"),
            (None, None) => return Err(HubError::NoCacheDir),
        };

        let endpoint = lookup("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let offline = lookup("HF_HUB_OFFLINE").is_some_and(|value| is_true(&value));

        let token_path = lookup("HF_TOKEN_PATH")
            .map(PathBuf::from)
            .or_else(|| hf_home.as_ref().map(|hf_home| hf_home.join("token")));
        let token = match lookup("HF_TOKEN") {
            Some(token) => Some(token.trim().to_owned()),
            None => token_path.as_deref().and_then(read_token_file),
        };

        let timeout = match lookup("HF_HUB_DOWNLOAD_TIMEOUT") {
            None => Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
            Some(value) => {
                let seconds = value.trim().parse::<f64>().ok().filter(|seconds| *seconds > 0.0);
                match seconds.and_then(|seconds| Duration::try_from_secs_f64(seconds).ok()) {
                    Some(timeout) => timeout,
                    None => {
                        return Err(HubError::InvalidEnv {
                            name: "HF_HUB_DOWNLOAD_TIMEOUT",
                            value,
                            reason: "expected a positive number of seconds",
                        });
                    }
                }
            }
        };

        Ok(HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            cache_dir,
            offline,
            token,
            timeout,
            progress: ProgressMode::Auto,
        })
    }
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("progress", &self.progress)
            .finish()
    }
}

/// `huggingface_hub`'s reading of boolean variables.
fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// The token saved by `huggingface-cli login`, if the file exists and is readable. A file that
/// cannot be read is logged and ignored, as anonymous access still works for public models.
fn read_token_file(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(contents) => Some(contents.trim().to_owned()).filter(|token| !token.is_empty()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read the Hugging Face token file; continuing without a token");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config_from(pairs: &[(&str, &str)]) -> Result<HubConfig, HubError> {
        let variables: HashMap<String, String> =
            pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        HubConfig::from_lookup(|name| variables.get(name).cloned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() -> Result<(), HubError> {
        let config = config_from(&[("HOME", "/nonexistent-home")])?;
        assert_eq!(config.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(config.cache_dir, Path::new("/nonexistent-home/.cache/huggingface/hub"));
        assert!(!config.offline);
        assert_eq!(config.token, None);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.progress, ProgressMode::Auto);
        Ok(())
    }

    #[test]
    fn hf_hub_cache_beats_hf_home_which_beats_xdg_cache_home() -> Result<(), HubError> {
        let xdg = config_from(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/xdg")])?;
        assert_eq!(xdg.cache_dir, Path::new("/xdg/huggingface/hub"));
        let hf_home = config_from(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/xdg"), ("HF_HOME", "/hf")])?;
        assert_eq!(hf_home.cache_dir, Path::new("/hf/hub"));
        let hub_cache = config_from(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache")])?;
        assert_eq!(hub_cache.cache_dir, Path::new("/cache"));
        let only_hub_cache = config_from(&[("HF_HUB_CACHE", "/cache")])?;
        assert_eq!(only_hub_cache.cache_dir, Path::new("/cache"));
        Ok(())
    }

    #[test]
    fn no_home_at_all_is_an_error() {
        assert!(matches!(config_from(&[]), Err(HubError::NoCacheDir)));
        assert!(matches!(config_from(&[("HF_HOME", "")]), Err(HubError::NoCacheDir)));
    }

    #[test]
    fn endpoint_loses_its_trailing_slash() -> Result<(), HubError> {
        let config = config_from(&[("HOME", "/h"), ("HF_ENDPOINT", "http://127.0.0.1:8080/")])?;
        assert_eq!(config.endpoint, "http://127.0.0.1:8080");
        Ok(())
    }

    #[test]
    fn offline_accepts_the_usual_true_words() -> Result<(), HubError> {
        for value in ["1", "true", "TRUE", "yes", "On"] {
            assert!(config_from(&[("HOME", "/h"), ("HF_HUB_OFFLINE", value)])?.offline, "{value}");
        }
        for value in ["0", "false", "no", "off", "", "2"] {
            assert!(!config_from(&[("HOME", "/h"), ("HF_HUB_OFFLINE", value)])?.offline, "{value}");
        }
        Ok(())
    }

    #[test]
    fn token_comes_from_hf_token_then_the_token_file() -> Result<(), Box<dyn std::error::Error>> {
        let hf_home = tempfile::tempdir()?;
        let hf_home_text = hf_home.path().to_string_lossy().into_owned();
        let without_file = config_from(&[("HF_HOME", &hf_home_text)])?;
        assert_eq!(without_file.token, None);

        std::fs::write(hf_home.path().join("token"), "hf_from_file\n")?;
        let from_file = config_from(&[("HF_HOME", &hf_home_text)])?;
        assert_eq!(from_file.token.as_deref(), Some("hf_from_file"));

        let from_env = config_from(&[("HF_HOME", &hf_home_text), ("HF_TOKEN", "hf_from_env")])?;
        assert_eq!(from_env.token.as_deref(), Some("hf_from_env"));

        let other_path = hf_home.path().join("other-token");
        std::fs::write(&other_path, "hf_other")?;
        let other_path_text = other_path.to_string_lossy().into_owned();
        let from_token_path = config_from(&[("HF_HOME", &hf_home_text), ("HF_TOKEN_PATH", &other_path_text)])?;
        assert_eq!(from_token_path.token.as_deref(), Some("hf_other"));
        Ok(())
    }

    #[test]
    fn debug_output_hides_the_token() -> Result<(), HubError> {
        let config = config_from(&[("HOME", "/h"), ("HF_TOKEN", "hf_secret")])?;
        let debug = format!("{config:?}");
        assert!(!debug.contains("hf_secret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        Ok(())
    }

    #[test]
    fn download_timeout_is_parsed_and_checked() -> Result<(), HubError> {
        let config = config_from(&[("HOME", "/h"), ("HF_HUB_DOWNLOAD_TIMEOUT", "2.5")])?;
        assert_eq!(config.timeout, Duration::from_millis(2500));
        for value in ["soon", "-1", "0", "inf"] {
            let result = config_from(&[("HOME", "/h"), ("HF_HUB_DOWNLOAD_TIMEOUT", value)]);
            assert!(matches!(result, Err(HubError::InvalidEnv { name: "HF_HUB_DOWNLOAD_TIMEOUT", .. })), "{value}");
        }
        Ok(())
    }
}
