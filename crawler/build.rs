//! Generates the man page and shell completions from the native CLI
//! definition into OUT_DIR; the binary embeds them (see `--generate-man`,
//! `--generate-completions`).

use std::path::PathBuf;

use clap::CommandFactory;

#[allow(dead_code)]
mod cli_args {
    include!("src/cli/args.rs");
}

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=src/cli/args.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut cmd = cli_args::NativeArgs::command();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut man)?;
    std::fs::write(out.join("cache-preload.1"), man)?;
    use clap_complete::Shell;
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "cache-preload", &out)?;
    }
    Ok(())
}
