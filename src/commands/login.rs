//! `rocker login` and `rocker logout`: credentials in podman's auth.json
//! (`$XDG_RUNTIME_DIR/containers/auth.json`, mode 0600).

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::{bail, Context, Result};
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};

use crate::cli::args::{LoginArgs, LogoutArgs};
use crate::commands::image::ImageContext;
use crate::image::distribution::auth::{AuthFiles, Credentials};
use crate::image::distribution::client::credential_key;
use crate::image::reference::Reference;

/// Reads one line from stdin, without echo when it is a terminal.
fn prompt(label: &str, hidden: bool) -> Result<String> {
    eprint!("{label}: ");
    std::io::stderr().flush()?;
    let stdin = std::io::stdin();
    let saved = match hidden && stdin.is_terminal() {
        true => {
            let saved = tcgetattr(&stdin).context("reading the terminal settings")?;
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning echo off")?;
            Some(saved)
        }
        false => None,
    };
    let mut line = String::new();
    let result = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
        eprintln!();
    }
    result.context("reading from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The registry a login names: a host, or a reference's registry.
fn registry_host(text: &str) -> Result<String> {
    let text = text
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if text == "docker.io" || text == "index.docker.io" || text.is_empty() {
        return Ok("docker.io".to_string());
    }
    let reference = Reference::parse(&format!("{text}/probe")).context("invalid registry name")?;
    Ok(reference.registry)
}

pub fn login_command(args: LoginArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let host = registry_host(&args.registry)?;
    let username = match args.username {
        Some(username) => username,
        None => prompt("Username", false)?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are exclusive"),
        (Some(password), false) => password,
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the password from stdin")?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt("Password", true)?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("a username and a password are needed");
    }
    let credentials = Credentials { username, password };
    let endpoint_host = match host.as_str() {
        "docker.io" => "registry-1.docker.io".to_string(),
        other => other.to_string(),
    };
    let reference = Reference::parse(&format!("{host}/probe"))?;
    let insecure = context
        .registries()?
        .endpoints(&reference)?
        .last()
        .is_some_and(|e| e.insecure);
    context
        .registry()?
        .check_login(&endpoint_host, insecure, &credentials)
        .with_context(|| format!("logging in to {host}"))?;
    let files = AuthFiles::new(context.dirs.auth_file.clone(), &context.dirs.home);
    files.store(credential_key(&host), &credentials)?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout_command(args: LogoutArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let host = registry_host(&args.registry)?;
    let files = AuthFiles::new(context.dirs.auth_file.clone(), &context.dirs.home);
    if files.remove(&host)? {
        println!("Removed login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(0)
}
