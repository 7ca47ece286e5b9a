//! `veil`: send files and text through a blind relay. A thin shell: the command line is
//! in `cli`, each command in its own module, errors become one line and an exit code in
//! `error`.
#![forbid(unsafe_code)]

mod cli;
mod common;
mod config;
mod consent;
mod contacts;
mod docs;
mod error;
mod identity;
mod inbox;
mod input;
mod media;
mod prompt;
mod qr;
mod receive;
mod send;
mod stream;
mod ui;

use clap::Parser;
use cli::{Cli, Cmd, IdentityCmd};
use veil_client::Home;

fn main() {
    let cli = Cli::parse();
    ui::set_quiet(cli.quiet);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("VEIL_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    std::process::exit(error::exit_code(run(cli)));
}

#[tokio::main]
async fn run(cli: Cli) -> anyhow::Result<()> {
    let home = Home::from_env();
    match cli.cmd {
        Cmd::Send(args) => send::run(home, args).await,
        Cmd::Receive(args) => receive::run(home, args).await,
        Cmd::Inbox { relay, json } => inbox::list(&home, relay, json).await,
        Cmd::Contacts { cmd } => contacts::run(&home, cmd),
        Cmd::Stream(args) => stream::publish(home, args).await,
        Cmd::Watch(args) => stream::watch(home, args).await,
        Cmd::Config { relay, out, expire, json } => config::show(&home, config::Shown { relay, out, expire, json }),
        Cmd::Completions { shell } => docs::print_completions(shell),
        Cmd::Man { dir } => docs::man(dir.as_deref()),
        Cmd::Identity { cmd } => match cmd {
            IdentityCmd::New { handle, passphrase_file, i_know_it_is_weak, json } => {
                identity::new(&home, handle, passphrase_file, i_know_it_is_weak, json)
            }
            IdentityCmd::Show { json } => identity::show(&home, json),
            IdentityCmd::Export { bundle } => identity::export(&home, bundle),
            IdentityCmd::Publish { relay } => identity::publish(&home, relay).await,
            IdentityCmd::Import { name, identity } => contacts::add(&home, &name, Some(&identity), None),
        },
    }
}
