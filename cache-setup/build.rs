//! Generates the man page from the CLI definition into OUT_DIR (printed by the hidden
//! `cache-setup --generate-man`).

use std::path::PathBuf;

use clap::CommandFactory;

#[allow(dead_code, missing_docs)]
mod cli {
    include!("src/cli.rs");
}

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut man = Vec::new();
    clap_mangen::Man::new(cli::Cli::command()).render(&mut man)?;
    std::fs::write(out.join("cache-setup.1"), man)
}
