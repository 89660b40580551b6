//! What each Containerfile line means: the instruction, its flags and
//! arguments, in the shape the builder carries out. Variables are left in:
//! they are substituted when the step runs, with the ARGs and ENVs in force
//! then (`words`).

use anyhow::{bail, Context, Result};

use super::containerfile::{Heredoc, Line};

/// A command in exec form (a JSON array) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From {
        image: String,
        stage: Option<String>,
        platform: Option<String>,
    },
    Run {
        command: Command,
        /// `--mount=` values, as written.
        mounts: Vec<String>,
        /// `--network=`.
        network: Option<String>,
    },
    /// COPY, or ADD (`add`): local tar archives unpacked, URLs fetched.
    Copy {
        add: bool,
        sources: Vec<String>,
        destination: String,
        from: Option<String>,
        chown: Option<String>,
        chmod: Option<String>,
        /// ADD --checksum=sha256:HEX of a URL.
        checksum: Option<String>,
        /// Here-documents named as sources are files with their text.
        heredocs: Vec<Heredoc>,
    },
    /// ENV: pairs, expanded when the step runs.
    Env(String),
    Arg(String),
    Label(String),
    Workdir(String),
    User(String),
    Expose(String),
    Volume(Vec<String>),
    StopSignal(String),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Healthcheck(Option<Healthcheck>),
    /// The instruction text, kept for images built from this one.
    Onbuild(String),
    Maintainer(String),
}

/// `HEALTHCHECK [OPTIONS] CMD ...` (None: `HEALTHCHECK NONE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub command: Command,
    /// Durations as written (`30s`), and the retries.
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<u32>,
}

/// A parsed line with where it came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    /// The line as written (keyword and arguments), for progress and
    /// history.
    pub text: String,
    pub instruction: Instruction,
}

/// Leading `--name[=value]` flags, and the rest of the arguments.
fn flags(arguments: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut found = vec![];
    let mut rest = arguments.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (word, after) = flag.split_at(end);
        match word.split_once('=') {
            Some((name, value)) => found.push((name.to_string(), Some(value.to_string()))),
            None => found.push((word.to_string(), None)),
        }
        rest = after.trim_start();
    }
    (found, rest)
}

/// The flags `keyword` takes, each at most once but `repeated` ones.
fn take_flags(
    keyword: &str,
    given: Vec<(String, Option<String>)>,
    known: &[&str],
    repeated: &[&str],
) -> Result<Vec<(String, String)>> {
    let mut taken: Vec<(String, String)> = vec![];
    for (name, value) in given {
        if !known.contains(&name.as_str()) {
            bail!(
                "{keyword} has no flag --{name} (it takes {})",
                match known {
                    [] => "none".to_string(),
                    known => known
                        .iter()
                        .map(|k| format!("--{k}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            );
        }
        let Some(value) = value else {
            bail!("{keyword} --{name} needs a value: --{name}=VALUE");
        };
        if !repeated.contains(&name.as_str()) && taken.iter().any(|(n, _)| *n == name) {
            bail!("{keyword} takes --{name} once");
        }
        taken.push((name, value));
    }
    Ok(taken)
}

fn flag(taken: &[(String, String)], name: &str) -> Option<String> {
    taken
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.clone())
}

/// Exec form when the arguments are a JSON array of strings, else shell
/// form (docker falls back to it for anything that is not one).
fn command(arguments: &str) -> Command {
    if arguments.starts_with('[') {
        if let Ok(words) = serde_json::from_str::<Vec<String>>(arguments) {
            return Command::Exec(words);
        }
    }
    Command::Shell(arguments.to_string())
}

/// A list that may be a JSON array or blank-separated (VOLUME, COPY
/// sources): the words, still to expand.
fn list(arguments: &str, escape: char) -> Vec<String> {
    if arguments.starts_with('[') {
        if let Ok(words) = serde_json::from_str::<Vec<String>>(arguments) {
            return words;
        }
    }
    super::words::split(arguments, escape)
}

/// A RUN's command with its here-documents: `RUN <<EOF` alone runs the
/// document as its script; otherwise the shell gets the line and the
/// documents after it, and reads them as it reads any here-document.
fn run_command(arguments: &str, heredocs: &[Heredoc]) -> Result<Command> {
    if heredocs.is_empty() {
        return Ok(command(arguments));
    }
    if let [only] = heredocs {
        let marker = arguments
            .trim()
            .trim_start_matches("<<")
            .trim_start_matches('-');
        let bare = marker.trim_matches(|c| c == '\'' || c == '"');
        if bare == only.name {
            return Ok(Command::Shell(only.body.clone()));
        }
    }
    let mut script = arguments.to_string();
    for heredoc in heredocs {
        script.push('\n');
        script.push_str(&heredoc.body);
        script.push_str(&heredoc.name);
    }
    Ok(Command::Shell(script))
}

pub fn interpret(line: &Line, escape: char) -> Result<Step> {
    let text = format!("{} {}", line.keyword, line.arguments);
    let instruction = instruction(line, escape)
        .with_context(|| format!("line {}: {}", line.number, text.trim()))?;
    Ok(Step {
        line: line.number,
        text: text.trim().to_string(),
        instruction,
    })
}

fn instruction(line: &Line, escape: char) -> Result<Instruction> {
    let keyword = line.keyword.as_str();
    let (given, rest) = flags(&line.arguments);
    let no_flags = |given: Vec<(String, Option<String>)>| -> Result<()> {
        take_flags(keyword, given, &[], &[]).map(drop)
    };
    let needs_arguments = |what: &str| -> Result<()> {
        match rest.is_empty() {
            true => bail!("{keyword} needs {what}"),
            false => Ok(()),
        }
    };
    Ok(match keyword {
        "FROM" => {
            let taken = take_flags(keyword, given, &["platform"], &[])?;
            let words = super::words::split(rest, escape);
            let (image, stage) = match words.as_slice() {
                [image] => (image.clone(), None),
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    (image.clone(), Some(name.to_ascii_lowercase()))
                }
                _ => bail!("FROM takes IMAGE [AS NAME]"),
            };
            Instruction::From {
                image,
                stage,
                platform: flag(&taken, "platform"),
            }
        }
        "RUN" => {
            let taken = take_flags(
                keyword,
                given,
                &["mount", "network", "security"],
                &["mount"],
            )?;
            if rest.is_empty() && line.heredocs.is_empty() {
                bail!("RUN needs a command");
            }
            Instruction::Run {
                command: run_command(rest, &line.heredocs)?,
                mounts: taken
                    .iter()
                    .filter(|(name, _)| name == "mount")
                    .map(|(_, value)| value.clone())
                    .collect(),
                network: flag(&taken, "network"),
            }
        }
        "COPY" | "ADD" => {
            let known: &[&str] = match keyword {
                "COPY" => &["from", "chown", "chmod", "link", "parents", "exclude"],
                _ => &[
                    "chown",
                    "chmod",
                    "link",
                    "checksum",
                    "keep-git-dir",
                    "exclude",
                ],
            };
            let taken = take_flags(keyword, given, known, &["exclude"])?;
            let mut words = list(rest, escape);
            if words.len() < 2 {
                bail!("{keyword} takes SOURCE... DESTINATION");
            }
            let destination = words.pop().expect("two words at least");
            Instruction::Copy {
                add: keyword == "ADD",
                sources: words,
                destination,
                from: flag(&taken, "from"),
                chown: flag(&taken, "chown"),
                chmod: flag(&taken, "chmod"),
                checksum: flag(&taken, "checksum"),
                heredocs: line.heredocs.clone(),
            }
        }
        "ENV" | "ARG" | "LABEL" => {
            no_flags(given)?;
            needs_arguments("NAME=VALUE")?;
            let rest = line.arguments.clone();
            match keyword {
                "ENV" => Instruction::Env(rest),
                "ARG" => Instruction::Arg(rest),
                _ => Instruction::Label(rest),
            }
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "EXPOSE" | "MAINTAINER" => {
            no_flags(given)?;
            needs_arguments("an argument")?;
            let rest = rest.to_string();
            match keyword {
                "WORKDIR" => Instruction::Workdir(rest),
                "USER" => Instruction::User(rest),
                "STOPSIGNAL" => Instruction::StopSignal(rest),
                "EXPOSE" => Instruction::Expose(rest),
                _ => Instruction::Maintainer(rest),
            }
        }
        "VOLUME" => {
            no_flags(given)?;
            needs_arguments("a path")?;
            Instruction::Volume(list(rest, escape))
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags(given)?;
            let command = command(rest);
            match keyword {
                "CMD" => Instruction::Cmd(command),
                _ => Instruction::Entrypoint(command),
            }
        }
        "SHELL" => {
            no_flags(given)?;
            match command(rest) {
                Command::Exec(words) if !words.is_empty() => Instruction::Shell(words),
                _ => bail!("SHELL takes a JSON array: SHELL [\"/bin/bash\", \"-c\"]"),
            }
        }
        "HEALTHCHECK" => healthcheck(given, rest)?,
        "ONBUILD" => {
            no_flags(given)?;
            let inner = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER" | "") {
                bail!(
                    "ONBUILD cannot take {}",
                    if inner.is_empty() { "nothing" } else { &inner }
                );
            }
            Instruction::Onbuild(rest.to_string())
        }
        other => bail!(
            "unknown instruction {other}: rocker knows FROM, RUN, COPY, ADD, ENV, ARG, LABEL, \
             WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, \
             ONBUILD and MAINTAINER"
        ),
    })
}

fn healthcheck(given: Vec<(String, Option<String>)>, rest: &str) -> Result<Instruction> {
    let (kind, command_text) = match rest.split_once(char::is_whitespace) {
        Some((kind, command)) => (kind, command.trim()),
        None => (rest, ""),
    };
    match kind.to_ascii_uppercase().as_str() {
        "NONE" if given.is_empty() && command_text.is_empty() => Ok(Instruction::Healthcheck(None)),
        "NONE" => bail!("HEALTHCHECK NONE takes nothing else"),
        "CMD" if !command_text.is_empty() => {
            let taken = take_flags(
                "HEALTHCHECK",
                given,
                &[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ],
                &[],
            )?;
            let retries = flag(&taken, "retries")
                .map(|n| n.parse::<u32>())
                .transpose()
                .context("--retries takes a number")?;
            Ok(Instruction::Healthcheck(Some(Healthcheck {
                command: command(command_text),
                interval: flag(&taken, "interval"),
                timeout: flag(&taken, "timeout"),
                start_period: flag(&taken, "start-period"),
                start_interval: flag(&taken, "start-interval"),
                retries,
            })))
        }
        _ => bail!("HEALTHCHECK takes [OPTIONS] CMD COMMAND, or NONE"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::containerfile::parse;

    fn steps(text: &str) -> Vec<Instruction> {
        let file = parse(text).unwrap();
        file.lines
            .iter()
            .map(|line| interpret(line, file.escape).unwrap().instruction)
            .collect()
    }

    fn error(text: &str) -> String {
        let file = parse(text).unwrap();
        let line = file.lines.last().unwrap();
        format!("{:#}", interpret(line, file.escape).unwrap_err())
    }

    #[test]
    fn instructions_and_their_forms() {
        let got = steps(
            "FROM --platform=linux/amd64 debian:12 AS Build\n\
             RUN --mount=type=cache,target=/var/cache/apt --network=none apt-get update\n\
             RUN [\"sh\", \"-c\", \"echo hi\"]\n\
             RUN [not json\n\
             COPY --from=build --chown=app:app a b* /dst/\n\
             ADD [\"with space\", \"/x\"]\n\
             CMD [\"serve\"]\n\
             ENTRYPOINT exec app\n\
             SHELL [\"/bin/bash\", \"-c\"]\n\
             VOLUME /a /b\n\
             HEALTHCHECK --interval=5s --retries=3 CMD curl -f localhost\n\
             HEALTHCHECK NONE\n\
             ONBUILD RUN make\n",
        );
        assert_eq!(
            got[0],
            Instruction::From {
                image: "debian:12".into(),
                stage: Some("build".into()),
                platform: Some("linux/amd64".into())
            }
        );
        assert_eq!(
            got[1],
            Instruction::Run {
                command: Command::Shell("apt-get update".into()),
                mounts: vec!["type=cache,target=/var/cache/apt".into()],
                network: Some("none".into())
            }
        );
        let Instruction::Run { command, .. } = &got[2] else {
            panic!("{:?}", got[2])
        };
        assert_eq!(
            *command,
            Command::Exec(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        let Instruction::Run { command, .. } = &got[3] else {
            panic!()
        };
        assert_eq!(*command, Command::Shell("[not json".into()));
        let Instruction::Copy {
            sources,
            destination,
            from,
            chown,
            add,
            ..
        } = &got[4]
        else {
            panic!()
        };
        assert_eq!(
            (sources.as_slice(), destination.as_str()),
            (&["a".to_string(), "b*".into()][..], "/dst/")
        );
        assert_eq!(
            (from.as_deref(), chown.as_deref(), *add),
            (Some("build"), Some("app:app"), false)
        );
        let Instruction::Copy { sources, add, .. } = &got[5] else {
            panic!()
        };
        assert_eq!(
            (sources.as_slice(), *add),
            (&["with space".to_string()][..], true)
        );
        assert_eq!(
            got[6],
            Instruction::Cmd(Command::Exec(vec!["serve".into()]))
        );
        assert_eq!(
            got[7],
            Instruction::Entrypoint(Command::Shell("exec app".into()))
        );
        assert_eq!(
            got[8],
            Instruction::Shell(vec!["/bin/bash".into(), "-c".into()])
        );
        assert_eq!(got[9], Instruction::Volume(vec!["/a".into(), "/b".into()]));
        let Instruction::Healthcheck(Some(check)) = &got[10] else {
            panic!()
        };
        assert_eq!(
            (check.interval.as_deref(), check.retries),
            (Some("5s"), Some(3))
        );
        assert_eq!(got[11], Instruction::Healthcheck(None));
        assert_eq!(got[12], Instruction::Onbuild("RUN make".into()));
    }

    #[test]
    fn heredoc_runs() {
        let got =
            steps("RUN <<EOF\necho a\necho b\nEOF\nRUN python3 <<'PY' > /out\nprint(1)\nPY\n");
        assert_eq!(
            got[0],
            Instruction::Run {
                command: Command::Shell("echo a\necho b\n".into()),
                mounts: vec![],
                network: None
            }
        );
        let Instruction::Run { command, .. } = &got[1] else {
            panic!()
        };
        assert_eq!(
            *command,
            Command::Shell("python3 <<'PY' > /out\nprint(1)\nPY".into())
        );
    }

    #[test]
    fn mistakes_name_the_line_and_the_fix() {
        assert!(error("FROM a\nBOGUS x").contains("line 2: BOGUS x: unknown instruction BOGUS"));
        assert!(error("COPY onlyone").contains("SOURCE... DESTINATION"));
        assert!(error("COPY --form=x a b").contains("no flag --form"));
        assert!(error("FROM a b").contains("IMAGE [AS NAME]"));
        assert!(error("SHELL bash").contains("JSON array"));
        assert!(error("RUN --network none").contains("needs a value"));
        assert!(error("ONBUILD FROM x").contains("cannot take FROM"));
    }
}
