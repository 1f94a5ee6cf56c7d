use clap::Parser;
use pullgate::cli::{Cli, Command};

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
