//! The callbacks cluster mode is handed (for metrics, or a test): one [`Hook`] type,
//! set or not, for every kind of callback.

use std::fmt;
use std::sync::Arc;

/// An optional callback `F` (a `dyn Fn`); each kind of hook is `Hook<ItsFn>`.
pub struct Hook<F: ?Sized>(pub Option<Arc<F>>);

// Written out: derives would ask `F: Clone` and `F: Default` of a `dyn Fn`.
impl<F: ?Sized> Clone for Hook<F> {
    fn clone(&self) -> Self {
        Hook(self.0.clone())
    }
}

impl<F: ?Sized> Default for Hook<F> {
    fn default() -> Self {
        Hook(None)
    }
}

impl<F: ?Sized> fmt::Debug for Hook<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hook(set)"
        } else {
            "Hook(none)"
        })
    }
}
