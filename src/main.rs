use clap::Parser;
use pullgate::cli::{Cli, Command};

/// mimalloc instead of glibc's malloc: after a burst of large reviews glibc kept tens
/// of MiB resident in its per-thread arenas (and its mmap threshold, raised by each
/// large free, kept later large buffers on the heap), while mimalloc returns freed
/// pages to the system.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let code = match Cli::parse().command {
        Command::Serve(args) => pullgate::serve::main(args),
        Command::Check(args) => pullgate::check::run(&args),
        Command::Overview(args) => pullgate::overview::run(&args),
        Command::Certs(args) => pullgate::certs::run(&args),
        Command::Crds => {
            print!("{}", pullgate::api::crds_yaml());
            0
        }
    };
    std::process::exit(code);
}
