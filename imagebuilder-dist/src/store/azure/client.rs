//! The few Blob service REST calls a page blob upload makes, signed and retried.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::signer;
use super::target::{Auth, BlobTarget};

/// The REST API version spoken (page blobs, Copy Blob and Get Page Ranges as used here).
const API_VERSION: &str = "2021-08-06";
/// Attempts per request when the service is busy or the connection fails.
const ATTEMPTS: u32 = 4;

/// The current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date() -> String {
    let now = time::OffsetDateTime::now_utc();
    let weekday = &now.weekday().to_string()[..3];
    let month = &now.month().to_string()[..3];
    format!(
        "{weekday}, {:02} {month} {} {:02}:{:02}:{:02} GMT",
        now.day(),
        now.year(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// A Blob service request failed. Never holds a URL with its SAS token.
#[derive(Debug, thiserror::Error)]
pub(super) enum BlobRequestError {
    /// The service answered with an error status.
    #[error("HTTP {status}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        status: StatusCode,
        /// The service's error code (`x-ms-error-code`).
        code: Option<String>,
    },
    /// No answer.
    #[error("request failed")]
    Transport(#[source] reqwest::Error),
    /// The answer is not what the operation expects.
    #[error("{0}")]
    Unexpected(String),
}

impl BlobRequestError {
    pub(super) fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Sends requests for blobs of one account with one set of credentials.
#[derive(Debug)]
pub(super) struct BlobClient {
    http: reqwest::Client,
    target: BlobTarget,
}

impl BlobClient {
    pub(super) fn new(target: BlobTarget) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .https_only(!target.allow_http)
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(300))
            .build()?;
        Ok(Self { http, target })
    }

    pub(super) fn target(&self) -> &BlobTarget {
        &self.target
    }

    /// `blob` with its credentials in the query string when they go there (SAS): the source
    /// of a copy. Secret: never shown.
    pub(super) fn authorized_url(&self, blob: &Url) -> String {
        match &self.target.auth {
            Auth::Sas(sas) => format!("{blob}?{sas}"),
            Auth::SharedKey(_) => blob.to_string(),
        }
    }

    /// Sends one request, retrying when the service is busy or unreachable.
    pub(super) async fn send(
        &self,
        method: Method,
        blob: &Url,
        query: &[(&str, &str)],
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Response, BlobRequestError> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            let result = self
                .send_once(&method, blob, query, headers, body.clone())
                .await;
            let retry = match &result {
                Err(BlobRequestError::Status { status, .. }) => {
                    status.is_server_error()
                        || *status == StatusCode::TOO_MANY_REQUESTS
                        || *status == StatusCode::REQUEST_TIMEOUT
                }
                Err(BlobRequestError::Transport(e)) => e.is_connect() || e.is_timeout(),
                _ => false,
            };
            if !retry || attempt == ATTEMPTS {
                return result;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        blob: &Url,
        query: &[(&str, &str)],
        extra: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Response, BlobRequestError> {
        let mut url = blob.clone();
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-date", header_value(http_date())?);
        headers.insert("x-ms-version", HeaderValue::from_static(API_VERSION));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        for (name, value) in extra {
            headers.insert(HeaderName::from_static(name), header_value(value.clone())?);
        }
        match &self.target.auth {
            Auth::SharedKey(key) => {
                let authorization = signer::authorization(
                    &self.target.account,
                    key,
                    method.as_str(),
                    &url,
                    &headers,
                );
                let mut value = header_value(authorization)?;
                value.set_sensitive(true);
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
            Auth::Sas(sas) => {
                let query = match url.query() {
                    Some(q) => format!("{q}&{sas}"),
                    None => sas.clone(),
                };
                url.set_query(Some(&query));
            }
        }
        let response = self
            .http
            .request(method.clone(), url)
            .headers(headers)
            .body(body)
            .send()
            .await
            // reqwest's message quotes the URL, SAS included.
            .map_err(|e| BlobRequestError::Transport(e.without_url()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Err(BlobRequestError::Status { status, code })
    }
}

fn header_value(value: String) -> Result<HeaderValue, BlobRequestError> {
    HeaderValue::try_from(value)
        .map_err(|_| BlobRequestError::Unexpected("a header value is not valid text".into()))
}

/// A header of a response as text.
pub(super) fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}
