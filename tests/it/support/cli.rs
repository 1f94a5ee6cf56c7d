//! One-shot runs of the pullgate binary (`check`, `overview`, ...) from the crate's
//! root, so that paths like `examples/config.yaml` resolve, and their output as text.

use std::path::Path;
use std::process::{Command, Output};

/// `pullgate args`, run to the end.
pub fn pullgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run pullgate")
}

/// `pullgate args` reading the cluster of `kubeconfig` (no `PULLGATE_CONFIG`, no
/// in-cluster service), run off the async runtime so that the test's fake apiserver
/// keeps answering.
pub async fn pullgate_in_cluster(args: &[&str], kubeconfig: &Path) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let kubeconfig = kubeconfig.to_path_buf();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pullgate"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("KUBECONFIG", kubeconfig)
            .env_remove("PULLGATE_CONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("run pullgate")
    })
    .await
    .expect("join")
}

/// What a run printed: stdout, then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
