//! `cloudauth completions SHELL`: a completion script generated from the same definitions
//! as the parser, so it never goes stale.

use crate::exit::{Failure, OK};
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args)]
pub struct Args {
    /// The shell to generate completions for
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: &Args) -> Result<u8, Failure> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "cloudauth", &mut std::io::stdout());
    Ok(OK)
}
