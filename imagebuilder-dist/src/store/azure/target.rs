//! Which blob a URL names, at which endpoint, with which credentials.
//!
//! The environment is read through `object_store`'s own Azure builder
//! (`MicrosoftAzureBuilder::from_env`), so the variables and their aliases are exactly those
//! that serve `az://` block blob uploads: `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_SAS_KEY`, `AZURE_STORAGE_ENDPOINT`,
//! `AZURE_STORAGE_USE_EMULATOR` (with `AZURITE_BLOB_STORAGE_URL`, default
//! `http://127.0.0.1:10000`) and `AZURE_ALLOW_HTTP`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::ClientConfigKey;
use url::Url;

/// The emulator's account when none is configured (as `object_store` does).
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_URL: &str = "http://127.0.0.1:10000";

/// How requests are authorized. `Debug` shows no secret.
pub(super) enum Auth {
    /// Shared Key: requests signed with the account key (decoded).
    SharedKey(Vec<u8>),
    /// A SAS token (a query string without `?`), appended to each request.
    Sas(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SharedKey(_) => "SharedKey(<redacted>)",
            Self::Sas(_) => "Sas(<redacted>)",
        })
    }
}

/// A blob and how to reach it.
#[derive(Debug)]
pub(super) struct BlobTarget {
    /// The blob's URL, without a query string.
    pub(super) blob: Url,
    /// The storage account.
    pub(super) account: String,
    pub(super) auth: Auth,
    /// Whether plain http is allowed (the emulator, or `AZURE_ALLOW_HTTP`).
    pub(super) allow_http: bool,
}

/// What the environment configures.
struct AzureEnv {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    /// The account's service URL for path-style addressing (emulator or endpoint).
    path_style_base: Option<String>,
    allow_http: bool,
}

fn truthy(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

impl AzureEnv {
    fn read() -> Self {
        let builder = MicrosoftAzureBuilder::from_env();
        let get = |key: AzureConfigKey| builder.get_config_value(&key).filter(|v| !v.is_empty());
        let emulator = truthy(get(AzureConfigKey::UseEmulator));
        let mut account = get(AzureConfigKey::AccountName);
        let path_style_base = if emulator {
            let account = account.get_or_insert_with(|| EMULATOR_ACCOUNT.to_owned());
            let url = std::env::var("AZURITE_BLOB_STORAGE_URL")
                .unwrap_or_else(|_| EMULATOR_URL.to_owned());
            Some(format!("{}/{account}", url.trim_end_matches('/')))
        } else {
            get(AzureConfigKey::Endpoint).map(|e| e.trim_end_matches('/').to_owned())
        };
        Self {
            account,
            key: get(AzureConfigKey::AccessKey),
            sas: get(AzureConfigKey::SasKey),
            path_style_base,
            allow_http: emulator || truthy(get(AzureConfigKey::Client(ClientConfigKey::AllowHttp))),
        }
    }
}

/// Where a URL points, before credentials.
struct Located {
    blob: Url,
    account: String,
    /// The URL's own SAS token.
    sas: Option<String>,
}

/// `container/path` of a URL path (`/container/path`), if both are there.
fn container_and_blob(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (container, blob) = rest.split_once('/')?;
    (!container.is_empty() && !blob.is_empty()).then_some(rest)
}

fn locate(url: &Url, env: &AzureEnv) -> Result<Option<Located>, String> {
    let sas = url.query().filter(|q| !q.is_empty()).map(str::to_owned);
    match url.scheme() {
        "az" | "azure" => {
            let container = url.host_str().unwrap_or("");
            let blob = url.path().trim_start_matches('/');
            if container.is_empty() || blob.is_empty() {
                return Err("an az:// URL names az://CONTAINER/BLOB".into());
            }
            let Some(account) = env.account.clone() else {
                return Err("no storage account: set AZURE_STORAGE_ACCOUNT_NAME".into());
            };
            let base = env
                .path_style_base
                .clone()
                .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
            let blob = Url::parse(&format!("{base}/{container}/{blob}"))
                .map_err(|e| format!("the configured endpoint makes no valid URL ({e})"))?;
            Ok(Some(Located { blob, account, sas }))
        }
        "http" | "https" => {
            let mut blob = url.clone();
            blob.set_query(None);
            blob.set_fragment(None);
            let host = url.host_str().unwrap_or("");
            if let Some(account) = host.strip_suffix(".blob.core.windows.net") {
                if container_and_blob(url.path()).is_none() {
                    return Err("an Azure blob URL names https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB".into());
                }
                return Ok(Some(Located {
                    blob,
                    account: account.to_owned(),
                    sas,
                }));
            }
            // A path-style URL under the configured emulator or endpoint.
            if let (Some(base), Some(account)) = (&env.path_style_base, &env.account) {
                if let Some(rest) = blob.as_str().strip_prefix(base.as_str()) {
                    if container_and_blob(rest).is_some() {
                        return Ok(Some(Located {
                            blob,
                            account: account.clone(),
                            sas,
                        }));
                    }
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn parse(url: &str) -> Result<Url, String> {
    Url::parse(url).map_err(|e| format!("not a URL ({e})"))
}

/// Whether `url` names an Azure blob: `az://`, `https://ACCOUNT.blob.core.windows.net/...`,
/// or a URL under the configured emulator or endpoint.
pub(crate) fn is_azure_url(url: &str) -> bool {
    parse(url).is_ok_and(|url| matches!(locate(&url, &AzureEnv::read()), Ok(Some(_))))
}

impl BlobTarget {
    /// The blob `url` names, with its credentials: the URL's SAS token, else the account key
    /// or SAS token of the environment. The reason may quote `url`.
    pub(super) fn resolve(url: &str) -> Result<Self, String> {
        let env = AzureEnv::read();
        let parsed = parse(url)?;
        let Located { blob, account, sas } =
            locate(&parsed, &env)?.ok_or_else(|| "not an Azure blob URL".to_owned())?;
        let key_fits = env.account.as_deref().is_none_or(|a| a == account);
        let auth = match (sas, &env.key, &env.sas) {
            (Some(sas), _, _) => Auth::Sas(sas),
            (None, Some(key), _) if key_fits => Auth::SharedKey(
                STANDARD
                    .decode(key.trim())
                    .map_err(|_| "AZURE_STORAGE_ACCOUNT_KEY is not base64".to_owned())?,
            ),
            (None, _, Some(sas)) => Auth::Sas(sas.trim_start_matches('?').to_owned()),
            _ => {
                return Err(format!(
                    "no credentials for account {account}: page blobs need a SAS token in the URL, or AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_KEY"
                ))
            }
        };
        if blob.scheme() == "http" && !env.allow_http {
            return Err("plain http needs AZURE_ALLOW_HTTP=true (or the emulator)".into());
        }
        Ok(Self {
            blob,
            account,
            auth,
            allow_http: env.allow_http,
        })
    }
}
