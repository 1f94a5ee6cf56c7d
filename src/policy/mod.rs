//! The decision core: image references ([`reference`]) and the decision ([`decide`]).
//! Pure code: no IO, no async, no Kubernetes client.

pub mod decide;
pub mod reference;
#[cfg(test)]
mod tests;

pub use decide::{
    decide, Decision, ImageUse, ImageVerdict, Location, Policy, Reason, Request, Unmanaged, Verdict,
};
pub use reference::{ImageRef, InvalidReference};
