//! The registry bridge: push a root of the layout to any OCI
//! distribution-spec registry, pull one from it into the layout. The
//! registry is the scale-out: one blocking HTTP/1.1 client
//! ([`client::Client`]) shared by the store's worker threads, blobs
//! streamed from or to the store and verified, documents kept as their
//! raw bytes; with them, on request, their referrers ([`referrers`]).

pub mod auth_file;
pub mod client;
mod fetch;
mod known;
pub mod loader;
pub mod pull;
pub mod push;
pub mod reference;
pub mod referrers;
pub mod tls;
mod upload;
mod upload_state;

pub use client::{Client, ClientOptions, Credentials};
pub use known::KnownBlobs;
pub use loader::RegistryLoader;
pub use pull::{PullOptions, PullPlan, PullReport, plan_pull, pull};
pub use push::{PushOptions, PushPlan, PushReport, plan_push, push};
pub use reference::Reference;
pub use referrers::{ReferrersPulled, ReferrersPushed, pull_referrers, push_referrers};
pub use tls::TlsOptions;
