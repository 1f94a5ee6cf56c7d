use clap::Parser;
use pullgate::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check(args) => pullgate::check::run(&args),
        Command::Overview(args) => pullgate::overview::run(&args),
        Command::Crds => {
            print!("{}", pullgate::api::crds_yaml());
            0
        }
        Command::Serve(_) | Command::Certs(_) => {
            eprintln!("error: not available in this build");
            2
        }
    };
    std::process::exit(code);
}
