//! What the scale examples share: their command line, the resident set they report, and
//! the world they judge (the cluster of `mk_scaled`, the image each namespace runs, and
//! the binding change they time).

use pullgate::api::Visibility;
use pullgate::index::testing::mk_scaled;
use pullgate::index::Objects;

/// The resident set of this process, in MiB.
pub fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// The `n`th command-line argument as a number, or `default`.
pub fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The cluster of `mk_scaled` and what runs in it.
pub struct World {
    pub objects: Objects,
    /// Per workspace: an image of a Private space bound to it, and the workspace.
    bound: Vec<Option<(String, String)>>,
    /// Every namespace (`ns-{workspace}-{i}`) with the image its workloads run: one of
    /// a Private space bound to its workspace, or a library image where it has none.
    pub names: Vec<(String, String)>,
}

impl World {
    /// The world the command line asks for, `[PODS] [NAMESPACES] [SPACES] [WORKSPACES]`
    /// (default 100000 10000 1000 500), and how many pods it is to run.
    pub fn from_args() -> (World, usize) {
        let pods = arg(1, 100_000);
        (World::new(arg(2, 10_000), arg(3, 1_000), arg(4, 500)), pods)
    }

    pub fn new(namespaces: usize, spaces: usize, workspaces: usize) -> World {
        let objects = mk_scaled(namespaces, spaces, workspaces);
        let mut bound: Vec<Option<(String, String)>> = vec![None; workspaces];
        for s in objects
            .spaces
            .iter()
            .filter(|s| s.spec.visibility == Visibility::Private)
        {
            let host = match s.spec.registry.as_str() {
                "harbor" => "harbor.example.com",
                _ => "registry.example.com:5000",
            };
            for w in &s.spec.workspaces {
                let i: usize = w.trim_start_matches("ws-").parse().unwrap_or(0);
                bound[i]
                    .get_or_insert_with(|| (format!("{host}/{}/app:1", s.spec.space), w.clone()));
            }
        }
        let per_ws = namespaces / workspaces;
        let names = (0..workspaces)
            .flat_map(|w| {
                let image = bound[w]
                    .as_ref()
                    .map_or("nginx:1.27".to_string(), |(image, _)| image.clone());
                (0..per_ws).map(move |i| (format!("ns-{w}-{i}"), image.clone()))
            })
            .collect();
        World {
            objects,
            bound,
            names,
        }
    }

    /// The objects after a binding change: the space the namespaces of ws-0 use is
    /// unbound from ws-0.
    pub fn unbound(&self) -> Objects {
        let mut changed = self.objects.clone();
        if let Some((image, ws)) = &self.bound[0] {
            for s in changed
                .spaces
                .iter_mut()
                .filter(|s| image.contains(&format!("/{}/", s.spec.space)))
            {
                s.spec.workspaces.retain(|w| w != ws);
            }
        }
        changed
    }
}
