//! A client of a validator client's keymanager API: bearer-token authenticated, one URL, with a
//! timeout per request. The sidecar lists the validators it serves and sets the graffiti of the
//! next proposal of each.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, Url, header};

use super::types::{
    GraffitiResponse, KeystoreList, MAX_GRAFFITI_BYTES, SetGraffitiRequest, graffiti_bytes,
};
use crate::error::{Error, Result};
use crate::types::ErrorMessage;

/// A keymanager API client (`ethereum/keymanager-APIs`).
#[derive(Debug, Clone)]
pub struct KeymanagerClient {
    http: reqwest::Client,
    base: Url,
    token: String,
    timeout: Duration,
}

impl KeymanagerClient {
    /// A client of the keymanager API at `url` (for example `http://127.0.0.1:5500`; parsed as
    /// the beacon client parses its URLs) with this bearer token and a 10 s timeout per request.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL that is not an `http(s)` base URL; [`Error::Config`] for
    /// an empty token.
    pub fn new(url: &str, token: impl Into<String>) -> Result<Self> {
        let token = token.into().trim().to_owned();
        if token.is_empty() {
            return Err(Error::Config {
                key: "inclusion.keymanager_token_file",
                reason: "the token is empty".into(),
            });
        }
        let base = crate::client::parse_base_url(url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|source| Error::Http { url: url.to_owned(), source })?;
        Ok(Self { http, base, token, timeout: Duration::from_secs(10) })
    }

    /// A client whose token is read from `token_file` (the validator client writes it, e.g.
    /// Lodestar's `validator-db/api-token.txt`, Lighthouse's `validators/api-token.txt`).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, else as [`KeymanagerClient::new`].
    pub fn from_token_file(url: &str, token_file: &Path) -> Result<Self> {
        let token = std::fs::read_to_string(token_file).map_err(|source| Error::Io {
            context: format!("reading the keymanager token file {}", token_file.display()),
            source,
        })?;
        Self::new(url, token)
    }

    /// The base URL.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.base
    }

    /// `GET /eth/v1/keystores`: the public keys (`0x` hex) of the validators the client signs for.
    ///
    /// # Errors
    /// Transport errors, timeouts, an error status ([`Error::Api`]: 401/403 for a bad token) or
    /// an undecodable body.
    pub async fn validators(&self) -> Result<Vec<String>> {
        let body = self.request(Method::GET, "eth/v1/keystores", None).await?;
        let list: KeystoreList = decode(&body, "keystore list")?;
        Ok(list.data.into_iter().map(|k| k.validating_pubkey.to_lowercase()).collect())
    }

    /// `GET /eth/v1/validator/{pubkey}/graffiti`.
    ///
    /// # Errors
    /// As [`KeymanagerClient::validators`]; 404 for a key the client does not hold.
    pub async fn graffiti(&self, pubkey: &str) -> Result<String> {
        let path = format!("eth/v1/validator/{pubkey}/graffiti");
        let body = self.request(Method::GET, &path, None).await?;
        Ok(decode::<GraffitiResponse>(&body, "graffiti")?.data.graffiti)
    }

    /// `POST /eth/v1/validator/{pubkey}/graffiti`: the graffiti of the validator's next
    /// proposals.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a graffiti over 32 bytes; else as
    /// [`KeymanagerClient::validators`].
    pub async fn set_graffiti(&self, pubkey: &str, graffiti: &str) -> Result<()> {
        if graffiti_bytes(graffiti).is_none() {
            return Err(Error::InvalidInput {
                reason: format!(
                    "graffiti of {} bytes (at most {MAX_GRAFFITI_BYTES})",
                    graffiti.len()
                ),
            });
        }
        let body = serde_json::to_vec(&SetGraffitiRequest { graffiti: graffiti.to_owned() })
            .map_err(|source| Error::Decode { what: "graffiti request".into(), source })?;
        let path = format!("eth/v1/validator/{pubkey}/graffiti");
        self.request(Method::POST, &path, Some(body)).await.map(drop)
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<bytes::Bytes> {
        let url = self.base.join(path).map_err(|e| Error::InvalidUrl {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })?;
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(&self.token)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.header(header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => return Err(Error::Timeout { url: url.to_string() }),
            Ok(Err(source)) => return Err(Error::Http { url: url.to_string(), source }),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let body = match tokio::time::timeout(self.timeout, response.bytes()).await {
            Err(_) => return Err(Error::Timeout { url: url.to_string() }),
            Ok(Err(source)) => return Err(Error::Http { url: url.to_string(), source }),
            Ok(Ok(body)) => body,
        };
        if status.is_success() {
            return Ok(body);
        }
        let body = serde_json::from_slice::<ErrorMessage>(&body).unwrap_or_else(|_| {
            ErrorMessage::new(status.as_u16(), status.canonical_reason().unwrap_or("error"))
        });
        Err(Error::Api { url: url.to_string(), status: status.as_u16(), body })
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| Error::Decode { what: what.to_owned(), source })
}
