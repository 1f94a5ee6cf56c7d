//! pullgate: a Kubernetes admission webhook and image-pull gatekeeper.
pub mod api;
