//! The decision ([`decide()`]) over image references ([`crate::reference`]).
//! Pure code: no IO, no async, no Kubernetes client.

pub mod decide;
#[cfg(test)]
mod tests;

pub use crate::reference::{ImageRef, InvalidReference};
pub use decide::{
    decide, Decision, ImageUse, ImageVerdict, Location, Policy, Reason, Request, Unmanaged, Verdict,
};
