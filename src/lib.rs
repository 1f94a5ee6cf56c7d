//! pullgate: a Kubernetes admission webhook and image-pull gatekeeper.
pub mod api;
pub mod certs;
pub mod server;
