//! The steps that change only the image config (ENV, LABEL, WORKDIR,
//! USER, EXPOSE, VOLUME, STOPSIGNAL, CMD, ENTRYPOINT, SHELL, HEALTHCHECK,
//! ONBUILD, MAINTAINER), applied as docker applies them, with their words
//! expanded first. Each returns the step as it went into the history.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use super::instruction::{Command, Healthcheck, Instruction};
use super::words;
use crate::image::config_changes;

/// docker's default SHELL.
pub const DEFAULT_SHELL: &[&str] = &["/bin/sh", "-c"];

/// What a metadata step needs besides the config.
pub struct Scope<'a> {
    pub escape: char,
    /// A variable's value: ENV first, then the ARGs in force.
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Whether this stage set CMD (then ENTRYPOINT keeps it).
    pub cmd_set: &'a mut bool,
}

/// The config's shell for shell-form commands.
pub fn shell_of(config: &Map<String, Value>) -> Vec<String> {
    config
        .get("Shell")
        .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
        .filter(|shell| !shell.is_empty())
        .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
}

/// A command as the config holds it: exec form as it is, shell form run
/// by the shell.
pub fn command_words(config: &Map<String, Value>, command: &Command) -> Vec<String> {
    match command {
        Command::Exec(words) => words.clone(),
        Command::Shell(text) => {
            let mut words = shell_of(config);
            words.push(text.clone());
            words
        }
    }
}

/// A Go duration as docker writes them (`30s`, `1m30s`, `500ms`), in
/// nanoseconds.
fn duration_nanos(text: &str) -> Result<u64> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        bail!("an empty duration");
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .with_context(|| format!("{text}: a duration needs a unit (30s, 1m, 500ms)"))?;
        let (number, after) = rest.split_at(number_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let value: f64 = number
            .parse()
            .with_context(|| format!("{text} is not a duration"))?;
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => bail!("{text}: unknown unit {other:?} (ns, us, ms, s, m, h)"),
        };
        total += value * scale;
        rest = after;
    }
    Ok(total as u64)
}

fn healthcheck_value(check: Option<&Healthcheck>) -> Result<Value> {
    let Some(check) = check else {
        return Ok(json!({"Test": ["NONE"]}));
    };
    let test = match &check.command {
        Command::Exec(words) => {
            let mut test = vec!["CMD".to_string()];
            test.extend(words.iter().cloned());
            test
        }
        Command::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
    };
    let mut value = json!({"Test": test});
    for (key, duration) in [
        ("Interval", &check.interval),
        ("Timeout", &check.timeout),
        ("StartPeriod", &check.start_period),
        ("StartInterval", &check.start_interval),
    ] {
        if let Some(duration) = duration {
            value[key] = duration_nanos(duration)?.into();
        }
    }
    if let Some(retries) = check.retries {
        value["Retries"] = retries.into();
    }
    Ok(value)
}

/// `path` joined onto the working directory `cwd` (when relative) and
/// cleaned, as WORKDIR does.
pub fn resolve_path(cwd: &str, path: &str) -> String {
    let joined = match path.starts_with('/') {
        true => path.to_string(),
        false => format!("{}/{path}", cwd.trim_end_matches('/')),
    };
    let mut parts: Vec<&str> = vec![];
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

fn expanded_pairs(
    text: &str,
    scope: &Scope<'_>,
    legacy: bool,
    what: &str,
) -> Result<Vec<(String, String)>> {
    words::pairs(text, scope.escape, legacy, scope.lookup)?
        .into_iter()
        .map(|(key, value)| match (key.is_empty(), value) {
            (false, Some(value)) => Ok((key, value)),
            _ => bail!("{what} takes NAME=VALUE pairs"),
        })
        .collect()
}

fn quoted_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(
            |(key, value)| match value.contains(char::is_whitespace) || value.is_empty() {
                true => format!("{key}=\"{value}\""),
                false => format!("{key}={value}"),
            },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// Applies a metadata `instruction` to `config`; returns the history
/// text. Other instructions are not metadata: None.
pub fn apply(
    config: &mut Map<String, Value>,
    instruction: &Instruction,
    scope: &mut Scope<'_>,
) -> Result<Option<String>> {
    let expand = |text: &str| words::expand(text, scope.escape, scope.lookup);
    let expand_all = |text: &str| -> Result<Vec<String>> {
        words::split(text, scope.escape)
            .iter()
            .map(|word| words::expand(word, scope.escape, scope.lookup))
            .collect()
    };
    let text = match instruction {
        Instruction::Env(text) => {
            let pairs = expanded_pairs(text, scope, true, "ENV")?;
            config_changes::set_env(config, &pairs);
            format!("ENV {}", quoted_pairs(&pairs))
        }
        Instruction::Label(text) => {
            let pairs = expanded_pairs(text, scope, false, "LABEL")?;
            config_changes::add_labels(config, &pairs);
            format!("LABEL {}", quoted_pairs(&pairs))
        }
        Instruction::Workdir(text) => {
            let cwd = config
                .get("WorkingDir")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_string();
            let dir = resolve_path(&cwd, &expand(text)?);
            config.insert("WorkingDir".into(), dir.clone().into());
            format!("WORKDIR {dir}")
        }
        Instruction::User(text) => {
            let user = expand(text)?;
            config.insert("User".into(), user.clone().into());
            format!("USER {user}")
        }
        Instruction::Expose(text) => {
            let ports = expand_all(text)?;
            config_changes::add_exposed_ports(config, &ports)?;
            format!("EXPOSE {}", ports.join(" "))
        }
        Instruction::Volume(paths) => {
            let paths = paths
                .iter()
                .map(|p| expand(p))
                .collect::<Result<Vec<_>>>()?;
            config_changes::add_volumes(config, &paths);
            format!("VOLUME {}", serde_json::to_string(&paths)?)
        }
        Instruction::StopSignal(text) => {
            let signal = expand(text)?;
            crate::spec::parse_signal(&signal).with_context(|| format!("STOPSIGNAL {signal}"))?;
            config.insert("StopSignal".into(), signal.clone().into());
            format!("STOPSIGNAL {signal}")
        }
        Instruction::Cmd(command) => {
            let words = command_words(config, command);
            config.insert("Cmd".into(), json!(words));
            *scope.cmd_set = true;
            format!("CMD {}", serde_json::to_string(&words)?)
        }
        Instruction::Entrypoint(command) => {
            let words = command_words(config, command);
            match *scope.cmd_set {
                // docker keeps a CMD this stage set; an inherited one goes.
                true => {
                    config.insert("Entrypoint".into(), json!(words));
                }
                false => config_changes::set_entrypoint(config, json!(words)),
            }
            format!("ENTRYPOINT {}", serde_json::to_string(&words)?)
        }
        Instruction::Shell(words) => {
            config.insert("Shell".into(), json!(words));
            format!("SHELL {}", serde_json::to_string(words)?)
        }
        Instruction::Healthcheck(check) => {
            let value = healthcheck_value(check.as_ref())?;
            config.insert("Healthcheck".into(), value);
            match check {
                None => "HEALTHCHECK NONE".to_string(),
                Some(_) => format!(
                    "HEALTHCHECK {}",
                    serde_json::to_string(&config["Healthcheck"]["Test"])?
                ),
            }
        }
        Instruction::Onbuild(text) => {
            config_changes::add_onbuild(config, text);
            format!("ONBUILD {text}")
        }
        Instruction::Maintainer(text) => format!("MAINTAINER {}", expand(text)?),
        _ => return Ok(None),
    };
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::containerfile::parse;
    use crate::build::instruction::interpret;

    fn built(text: &str, cmd_inherited: bool) -> (Map<String, Value>, Vec<String>) {
        let mut config = Map::new();
        if cmd_inherited {
            config.insert("Cmd".into(), json!(["bash"]));
        }
        let mut cmd_set = false;
        let file = parse(text).unwrap();
        let mut history = vec![];
        for line in &file.lines {
            let step = interpret(line, file.escape).unwrap();
            // ENV is read back as it is set, as docker does.
            let env = config.get("Env").cloned().unwrap_or(json!([]));
            let lookup = move |name: &str| -> Option<String> {
                env.as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .find_map(|entry| {
                        let (key, value) = entry.split_once('=')?;
                        (key == name).then(|| value.to_string())
                    })
            };
            let mut scope = Scope {
                escape: file.escape,
                lookup: &lookup,
                cmd_set: &mut cmd_set,
            };
            history.extend(apply(&mut config, &step.instruction, &mut scope).unwrap());
        }
        (config, history)
    }

    #[test]
    fn metadata_steps_set_the_config_as_docker_does() {
        let (config, history) = built(
            "ENV APP=/srv/app NAME=\"my app\"\n\
             WORKDIR $APP\nWORKDIR sub/../data\n\
             USER nobody\nEXPOSE 80 53/udp\nVOLUME [\"/cache\"]\n\
             LABEL org.name=\"$NAME\"\nSTOPSIGNAL SIGQUIT\n\
             SHELL [\"/bin/bash\", \"-c\"]\nCMD serve --port 80\n\
             HEALTHCHECK --interval=1m30s --retries=2 CMD curl -f localhost\n",
            true,
        );
        assert_eq!(config["Env"], json!(["APP=/srv/app", "NAME=my app"]));
        assert_eq!(config["WorkingDir"], "/srv/app/data");
        assert_eq!(config["User"], "nobody");
        assert!(config["ExposedPorts"]["53/udp"].is_object());
        assert!(config["Volumes"]["/cache"].is_object());
        assert_eq!(config["Labels"]["org.name"], "my app");
        assert_eq!(config["StopSignal"], "SIGQUIT");
        assert_eq!(config["Cmd"], json!(["/bin/bash", "-c", "serve --port 80"]));
        assert_eq!(
            config["Healthcheck"]["Test"],
            json!(["CMD-SHELL", "curl -f localhost"])
        );
        assert_eq!(config["Healthcheck"]["Interval"], 90_000_000_000u64);
        assert_eq!(history[0], "ENV APP=/srv/app NAME=\"my app\"");
        assert_eq!(history[2], "WORKDIR /srv/app/data");
    }

    #[test]
    fn entrypoint_drops_an_inherited_cmd_only() {
        let (config, _) = built("ENTRYPOINT [\"/start\"]\n", true);
        assert!(config["Cmd"].is_null());
        let (config, _) = built("CMD [\"--fast\"]\nENTRYPOINT [\"/start\"]\n", true);
        assert_eq!(config["Cmd"], json!(["--fast"]));
    }

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(duration_nanos("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration_nanos("500ms").unwrap(), 500_000_000);
        assert_eq!(duration_nanos("1h2m").unwrap(), 3_720_000_000_000);
        assert!(duration_nanos("5").is_err());
        assert!(duration_nanos("5x").is_err());
    }
}
