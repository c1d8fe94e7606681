//! `classcast admin ...`: account management on the server's own machine, for the
//! first account (the admin pages need one to sign in) and for recovery.
//!
//! Invariants:
//! - The database is found exactly as `serve` finds it (`--data-dir`,
//!   `CLASSCAST_DATA_DIR`, the `--config` file, `data`), and opened through the store,
//!   so migrations apply and SQLite's locking makes it safe while the server runs.
//! - A password never appears on the command line (where `ps` would show it): it
//!   comes from `CLASSCAST_ADMIN_PASSWORD` or standard input, and a terminal does
//!   not echo it.
//! - Creation is audited like one made through the API ("from the command line").

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;

use crate::config::{AdminArgs, AdminCommand};
use crate::store::{Actor, Store};

/// The environment variable that may carry the new account's password.
pub const PASSWORD_ENV: &str = "CLASSCAST_ADMIN_PASSWORD";

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    match args.command {
        AdminCommand::AddUser { username, data } => {
            let dir = data.resolve()?;
            let store = Store::open(&dir.join("classcast.db")).context("opening the database")?;
            let password = password()?;
            let user = store.create_admin(&username, &password, &Actor::CommandLine)?;
            println!("admin account {} created (id {}) in {}", user.username, user.id, dir.display());
            Ok(())
        }
    }
}

/// The password: from the environment, else standard input (twice on a terminal).
fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return read_line(&mut stdin.lock());
    }
    let first = prompt("Password (at least 10 characters): ")?;
    let again = prompt("Password again: ")?;
    anyhow::ensure!(first == again, "the two passwords differ");
    Ok(first)
}

fn prompt(text: &str) -> anyhow::Result<String> {
    eprint!("{text}");
    std::io::stderr().flush()?;
    let line = {
        let _quiet = EchoOff::new();
        read_line(&mut std::io::stdin().lock())
    };
    eprintln!();
    line
}

/// One line without its line ending; nothing at all is an error.
fn read_line(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    let n = input.read_line(&mut line).context("reading the password from standard input")?;
    anyhow::ensure!(n > 0, "no password on standard input (or set {PASSWORD_ENV})");
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

/// Terminal echo off on standard input until dropped.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: termios is plain data; tcgetattr fills it or fails, and we only use it if it did.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
            return EchoOff(None);
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        // SAFETY: a termios read from this terminal with one flag cleared.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) };
        EchoOff(Some(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_line_keeps_everything_but_its_line_ending() {
        assert_eq!(read_line(&mut "  spaced pass  \r\nnext".as_bytes()).unwrap(), "  spaced pass  ");
        assert_eq!(read_line(&mut "no newline".as_bytes()).unwrap(), "no newline");
        assert!(read_line(&mut "".as_bytes()).is_err(), "empty input");
    }
}
