//! CRD types of the `pullgate.io/v1alpha1` API.
