//! Parsing the verbs a script runs in a loop (`run`, `exec`, `ps`...)
//! without building the whole command tree. clap's derive builds every
//! verb's flags before it looks at the first argument: about 0.6 ms of a
//! run's start-up, cold, for the 40 verbs. Here the verb's own flags alone
//! are built and parsed; anything they do not parse cleanly (help, an
//! unknown flag, a bad value) is parsed again by the whole tree, so what a
//! user sees is clap's usual help and errors, word for word. A lone
//! `--version` is answered the same way, by a command with no verbs.

use std::ffi::OsString;

use clap::{Args, FromArgMatches, Parser};

use super::args::{
    Cli, ContainerInspectArgs, ExecArgs, KillArgs, PsArgs, RmArgs, RunArgs, StartArgs, StopArgs,
    WaitArgs,
};

/// How a verb's flags are added to its `clap::Command`.
type AddFlags = fn(clap::Command) -> clap::Command;

/// The verbs with a quick parse, and how each builds its flags.
const QUICK_VERBS: [(&str, AddFlags); 11] = [
    ("run", RunArgs::augment_args),
    ("create", RunArgs::augment_args),
    ("exec", ExecArgs::augment_args),
    ("start", StartArgs::augment_args),
    ("ps", PsArgs::augment_args),
    ("stop", StopArgs::augment_args),
    ("kill", KillArgs::augment_args),
    ("rm", RmArgs::augment_args),
    ("wait", WaitArgs::augment_args),
    ("inspect", ContainerInspectArgs::augment_args),
    ("logs", super::args::LogsArgs::augment_args),
];

/// The command line `args` (the program's name first), parsed as the
/// whole tree would parse it.
pub fn parse_from(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    if let Some(answer) = version_answer(&args) {
        return Err(answer);
    }
    if let Some(cli) = quick_parse(&args) {
        return Ok(cli);
    }
    Cli::try_parse_from(args)
}

/// `rocker --version` (or `-V`) alone, which scripts ask before anything
/// else: clap's answer (an "error" of kind `DisplayVersion`, printed to
/// stdout, status 0) from a command holding the name and version only.
/// The whole tree took 1.5 ms more for it, building all 40 verbs.
fn version_answer(args: &[OsString]) -> Option<clap::Error> {
    let [_, flag] = args else {
        return None;
    };
    if flag != "--version" && flag != "-V" {
        return None;
    }
    let answer = clap::Command::new("rocker")
        .version(env!("CARGO_PKG_VERSION"))
        .try_get_matches_from(args)
        .err()?;
    (answer.kind() == clap::error::ErrorKind::DisplayVersion).then_some(answer)
}

fn quick_parse(args: &[OsString]) -> Option<Cli> {
    let verb = lone_verb(args.get(1)?.to_str()?)?;
    let matches = clap::Command::new("rocker")
        .subcommand(verb)
        .try_get_matches_from(args)
        .ok()?;
    Cli::from_arg_matches(&matches).ok()
}

/// Verb `name` alone, as the whole tree has it but for its description
/// (help goes to the whole tree).
fn lone_verb(name: &str) -> Option<clap::Command> {
    let (name, augment) = QUICK_VERBS.iter().find(|(verb, _)| *verb == name)?;
    Some(augment(clap::Command::new(*name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn each_lone_verb_is_the_whole_trees_but_for_its_description() {
        let whole = Cli::command();
        for (name, _) in QUICK_VERBS {
            let ours = format!("{:?}", lone_verb(name).unwrap().about(None));
            let theirs = whole.find_subcommand(name).unwrap().clone();
            let theirs = theirs.about(None).long_about(None).display_order(None);
            let theirs = format!("{theirs:?}");
            // Where they part, if they do (the whole Debug is pages long).
            let same = ours.bytes().zip(theirs.bytes()).take_while(|(a, b)| a == b);
            let at = same.count();
            let context =
                |text: &str| text[at.saturating_sub(80)..(at + 80).min(text.len())].to_string();
            assert!(
                ours == theirs,
                "{name}: ours {} / theirs {}",
                context(&ours),
                context(&theirs)
            );
        }
    }

    #[test]
    fn a_quick_parse_gives_what_the_whole_tree_gives() {
        for line in [
            "rocker run --rm -i -e A=1 -p 8080:80 --network none -v /a:/b:ro img sh -c x",
            "rocker run -d --name web --restart on-failure:3 -h box img",
            "rocker create --read-only --cap-drop ALL img true",
            "rocker exec -it -u 1 -w /tmp web sh",
            "rocker ps -a -q --no-trunc --filter status=exited",
            "rocker start -a web",
            "rocker stop -t 3 web db",
            "rocker kill -s HUP web",
            "rocker rm -f -v web",
            "rocker wait web",
            "rocker inspect -f {{.State.Status}} web",
            "rocker logs -f --tail 3 web",
            "rocker run",
        ] {
            let quick = quick_parse(&words(line)).expect(line);
            let whole = Cli::try_parse_from(words(line)).unwrap();
            assert_eq!(format!("{quick:?}"), format!("{whole:?}"), "{line}");
        }
    }

    #[test]
    fn the_version_is_the_whole_trees_word_for_word() {
        for line in ["rocker --version", "rocker -V"] {
            let ours = version_answer(&words(line)).expect(line);
            let whole = Cli::try_parse_from(words(line)).unwrap_err();
            assert_eq!(ours.kind(), whole.kind(), "{line}");
            assert_eq!(ours.to_string(), whole.to_string(), "{line}");
            assert!(!ours.use_stderr(), "{line}");
        }
        for line in ["rocker --version ps", "rocker ps --version", "rocker -v"] {
            assert!(version_answer(&words(line)).is_none(), "{line}");
        }
    }

    #[test]
    fn help_and_errors_go_to_the_whole_tree() {
        for line in [
            "rocker run --help",
            "rocker ps --no-such-flag",
            "rocker run --rm=maybe img",
            "rocker exec",
        ] {
            assert!(quick_parse(&words(line)).is_none(), "{line}");
            let err = parse_from(words(line)).unwrap_err();
            let whole = Cli::try_parse_from(words(line)).unwrap_err();
            assert_eq!(err.to_string(), whole.to_string(), "{line}");
        }
    }
}
