//! What an UPDATE changes: the image uses of the new object that the old one did not
//! have, found in time linear in both (only those are judged, so an unrelated edit of a
//! workload is never blocked by an image it already ran).

use std::cell::Cell;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use crate::policy::{ImageUse, Location};

/// The work one diff did, for tests and benchmarks that show it is linear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffWork {
    /// Equality tests of two image uses.
    pub comparisons: usize,
    /// Insertions into and lookups in the table of old image uses.
    pub lookups: usize,
}

impl DiffWork {
    pub fn total(self) -> usize {
        self.comparisons + self.lookups
    }
}

/// The images of `new` that are new or changed compared with `old` (same location and
/// name with the same image is unchanged).
pub fn changed<'a>(new: Vec<ImageUse<'a>>, old: &[ImageUse<'_>]) -> Vec<ImageUse<'a>> {
    changed_counted(new, old).0
}

/// [`changed`], with the work it did: one insertion per old image use and one lookup
/// per new one in a table keyed by (location, name, image), and an equality test only
/// where hashes meet. The hasher is std's, keyed at random per process, so a caller
/// cannot choose names that collide.
pub fn changed_counted<'a>(
    new: Vec<ImageUse<'a>>,
    old: &[ImageUse<'_>],
) -> (Vec<ImageUse<'a>>, DiffWork) {
    let comparisons = Cell::new(0);
    // The key's cell is the comparison counter, not part of its identity (hash and
    // equality ignore it).
    #[allow(clippy::mutable_key_type)]
    let old_keys: HashSet<Key<'_>> = old.iter().map(|o| Key::of(o, &comparisons)).collect();
    let new_len = new.len();
    let out = new
        .into_iter()
        .filter(|n| !old_keys.contains(&Key::of(n, &comparisons)))
        .collect();
    drop(old_keys);
    let work = DiffWork {
        comparisons: comparisons.get(),
        lookups: old.len() + new_len,
    };
    (out, work)
}

/// An image use as the diff's table key; equality tests are counted.
struct Key<'k> {
    location: Location,
    name: &'k str,
    image: &'k str,
    comparisons: &'k Cell<usize>,
}

impl<'k> Key<'k> {
    fn of(u: &ImageUse<'k>, comparisons: &'k Cell<usize>) -> Key<'k> {
        Key {
            location: u.location,
            name: u.name,
            image: u.image,
            comparisons,
        }
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.comparisons.set(self.comparisons.get() + 1);
        self.location == other.location && self.name == other.name && self.image == other.image
    }
}

impl Eq for Key<'_> {}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.location, self.name, self.image).hash(state);
    }
}
