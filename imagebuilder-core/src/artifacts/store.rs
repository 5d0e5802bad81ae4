//! Choosing the object store that serves a URL.

use std::sync::Arc;

use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreScheme};
use url::Url;

/// The store serving `url` and the object's path in it, or why there is none.
///
/// Credentials come from the environment (each store's builder `from_env`); an Azure URL's
/// query string is taken as its SAS token. The reason may quote `url`: show it through
/// [`redact_uri`](super::redact_uri).
pub fn for_url(url: &Url) -> Result<(Arc<dyn ObjectStore>, StorePath), String> {
    let (scheme, path) = ObjectStoreScheme::parse(url).map_err(|e| e.to_string())?;
    // Object paths carry no query string: only Azure's SAS token has a place to go (its
    // store's configuration); a signed URL of any other store would be fetched unsigned.
    if url.query().is_some() && scheme != ObjectStoreScheme::MicrosoftAzure {
        return Err("URLs with a query string (signed URLs) are supported for Azure blobs only; use the store's credentials from the environment instead".into());
    }
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        ObjectStoreScheme::Http => http(url)?,
        ObjectStoreScheme::AmazonS3 => s3(url)?,
        ObjectStoreScheme::MicrosoftAzure => azure(url)?,
        ObjectStoreScheme::GoogleCloudStorage => gcs(url)?,
        other => return Err(format!("{other:?} URLs are not supported")),
    };
    Ok((store, path))
}

#[cfg_attr(
    all(feature = "http", feature = "s3", feature = "azure", feature = "gcp"),
    allow(dead_code)
)]
fn missing(feature: &str) -> String {
    format!("this build of imagebuilder lacks the '{feature}' feature needed for this URL")
}

#[cfg(feature = "http")]
fn http(url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    let origin = url.origin().ascii_serialization();
    // Plain http is the user's choice (the template names it); the checksum guards content.
    let options = object_store::ClientOptions::new().with_allow_http(url.scheme() == "http");
    let store = object_store::http::HttpBuilder::new()
        .with_url(origin)
        .with_client_options(options)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "http"))]
fn http(_: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    Err(missing("http"))
}

#[cfg(feature = "s3")]
fn s3(url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_url(url.as_str())
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "s3"))]
fn s3(_: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    Err(missing("s3"))
}

#[cfg(feature = "azure")]
fn azure(url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url.as_str());
    // A SAS token in the URL (AIB's usual scriptUri form) authorizes the request.
    if let Some(sas) = url.query() {
        builder = builder.with_config(object_store::azure::AzureConfigKey::SasKey, sas);
    }
    let store = builder.build().map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "azure"))]
fn azure(_: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    Err(missing("azure"))
}

#[cfg(feature = "gcp")]
fn gcs(url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    let store = object_store::gcp::GoogleCloudStorageBuilder::from_env()
        .with_url(url.as_str())
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "gcp"))]
fn gcs(_: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    Err(missing("gcp"))
}
