use clap::Parser as _;
use pullgate::cli::{Cli, Command};

/// jemalloc instead of glibc's malloc: after a burst of large reviews glibc kept tens
/// of MiB resident in its per-thread arenas (and its mmap threshold, raised by each
/// large free, kept later large buffers on the heap), and mimalloc kept as much, while
/// jemalloc's background purging returns freed pages to the system within seconds
/// (`tests/it/large_objects.rs`). Throughput is the same as with glibc's (h2load, 10 KiB
/// reviews, side by side).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| pullgate::provider::bad_flags(e));
    let code = match cli.command {
        Command::Serve(args) => pullgate::serve::main(*args),
        Command::Check(args) => pullgate::check::run(&args),
        Command::Overview(args) => pullgate::overview::run(&args),
        Command::Audit(args) => pullgate::audit_cli::run(&args),
        Command::Certs(args) => pullgate::certs::run(&args),
        Command::CredentialProvider(args) => pullgate::provider::run(&args),
        Command::Crds => {
            print!("{}", pullgate::api::crds_yaml());
            0
        }
    };
    std::process::exit(code);
}
