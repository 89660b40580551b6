//! `--change` for import and commit: a Dockerfile instruction (`CMD`,
//! `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`, `EXPOSE`, `LABEL`, `VOLUME`,
//! `STOPSIGNAL`, `ONBUILD`) applied to an image config's `config` object,
//! as docker applies them; and the setters that `build` uses too, once it
//! has expanded an instruction's words.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

/// Splits `text` into words: whitespace separates, quotes (`"..."`,
/// `'...'`) group and are removed, a backslash takes the next character
/// as it is (outside single quotes).
pub fn words(text: &str) -> Result<Vec<String>> {
    let mut words = vec![];
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                current.push(chars.next().context("a backslash at the end")?);
                in_word = true;
            }
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("an unclosed quote in {text:?}");
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// `["a","b"]` (exec form) or `a b` (shell form: run by `/bin/sh -c`).
fn command(text: &str) -> Result<Value> {
    if text.trim_start().starts_with('[') {
        let list: Vec<String> = serde_json::from_str(text)
            .with_context(|| format!("{text:?} is not a JSON list of strings"))?;
        return Ok(json!(list));
    }
    Ok(json!(["/bin/sh", "-c", text]))
}

/// `K=V K2="V 2"`, or the old one-pair form `K V...`.
fn pairs(text: &str, what: &str) -> Result<Vec<(String, String)>> {
    let words = words(text)?;
    if words.is_empty() {
        bail!("{what} needs KEY=VALUE");
    }
    if !words[0].contains('=') {
        let (key, value) = text
            .trim()
            .split_once(char::is_whitespace)
            .with_context(|| format!("{what} {text:?} needs a value"))?;
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => bail!("{what} takes KEY=VALUE pairs, not {word:?}"),
        })
        .collect()
}

fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = config.entry(key.to_string()).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("just made an object")
}

/// Sets each `KEY=VALUE` in the config's `Env`, replacing an earlier
/// value of the same key in place of order (docker's ENV).
pub fn set_env(config: &mut Map<String, Value>, pairs: &[(String, String)]) {
    let mut env: Vec<String> = config
        .get("Env")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    for (key, value) in pairs {
        env.retain(|entry| entry.split_once('=').map_or(entry.as_str(), |(k, _)| k) != key);
        env.push(format!("{key}={value}"));
    }
    config.insert("Env".into(), json!(env));
}

pub fn add_labels(config: &mut Map<String, Value>, pairs: &[(String, String)]) {
    let labels = object(config, "Labels");
    for (key, value) in pairs {
        labels.insert(key.clone(), value.clone().into());
    }
}

/// EXPOSE: each `PORT[/PROTOCOL]` (tcp by default) in `ExposedPorts`.
pub fn add_exposed_ports(config: &mut Map<String, Value>, ports: &[String]) -> Result<()> {
    let exposed = object(config, "ExposedPorts");
    for port in ports {
        let port = if port.contains('/') {
            port.clone()
        } else {
            format!("{port}/tcp")
        };
        let (number, protocol) = port.split_once('/').expect("has a /");
        if number.parse::<u16>().is_err() || !matches!(protocol, "tcp" | "udp" | "sctp") {
            bail!("EXPOSE takes PORT[/tcp|udp|sctp], not {port:?}");
        }
        exposed.insert(port, json!({}));
    }
    Ok(())
}

pub fn add_volumes(config: &mut Map<String, Value>, paths: &[String]) {
    let volumes = object(config, "Volumes");
    for path in paths {
        volumes.insert(path.clone(), json!({}));
    }
}

pub fn add_onbuild(config: &mut Map<String, Value>, instruction: &str) {
    let mut onbuild: Vec<String> = config
        .get("OnBuild")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    onbuild.push(instruction.to_string());
    config.insert("OnBuild".into(), json!(onbuild));
}

/// ENTRYPOINT: as docker, a new entrypoint drops the command it had.
pub fn set_entrypoint(config: &mut Map<String, Value>, entrypoint: Value) {
    config.insert("Entrypoint".into(), entrypoint);
    config.insert("Cmd".into(), Value::Null);
}

/// Applies one `--change` to `config` (the image config's `config`).
pub fn apply(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let change = change.trim();
    let (instruction, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let rest = rest.trim();
    match instruction.to_ascii_uppercase().as_str() {
        "CMD" if !rest.is_empty() => {
            config.insert("Cmd".into(), command(rest)?);
        }
        "ENTRYPOINT" if !rest.is_empty() => set_entrypoint(config, command(rest)?),
        "ENV" => set_env(config, &pairs(rest, "ENV")?),
        "LABEL" => add_labels(config, &pairs(rest, "LABEL")?),
        "WORKDIR" if !rest.is_empty() => {
            config.insert("WorkingDir".into(), rest.into());
        }
        "USER" if !rest.is_empty() => {
            config.insert("User".into(), rest.into());
        }
        "STOPSIGNAL" if !rest.is_empty() => {
            config.insert("StopSignal".into(), rest.into());
        }
        "EXPOSE" => add_exposed_ports(config, &words(rest)?)?,
        "VOLUME" => {
            let paths: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest)
                    .with_context(|| format!("{rest:?} is not a JSON list of strings"))?
            } else {
                words(rest)?
            };
            add_volumes(config, &paths);
        }
        "ONBUILD" if !rest.is_empty() => add_onbuild(config, rest),
        "CMD" | "ENTRYPOINT" | "WORKDIR" | "USER" | "STOPSIGNAL" | "ONBUILD" => {
            bail!("{instruction} needs a value")
        }
        other => bail!(
            "{other} cannot be a --change; use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, \
             STOPSIGNAL, USER, VOLUME or WORKDIR"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> Value {
        let mut config = Map::new();
        config.insert("Env".into(), json!(["PATH=/bin", "A=old"]));
        config.insert("Cmd".into(), json!(["sh"]));
        for change in changes {
            apply(&mut config, change).unwrap();
        }
        Value::Object(config)
    }

    #[test]
    fn instructions_change_the_config_as_docker_does() {
        let config = applied(&[
            r#"CMD ["nginx", "-g", "daemon off;"]"#,
            "ENV A=new B=\"two words\"",
            "ENV C three words",
            "LABEL org.example=x \"quoted key\"=y",
            "EXPOSE 80 53/udp",
            "WORKDIR /srv",
            "USER app",
            "VOLUME /data /cache",
        ]);
        assert_eq!(config["Cmd"], json!(["nginx", "-g", "daemon off;"]));
        assert_eq!(
            config["Env"],
            json!(["PATH=/bin", "A=new", "B=two words", "C=three words"])
        );
        assert_eq!(config["Labels"]["quoted key"], "y");
        assert!(config["ExposedPorts"]["80/tcp"].is_object());
        assert!(config["ExposedPorts"]["53/udp"].is_object());
        assert_eq!(config["WorkingDir"], "/srv");
        assert_eq!(config["User"], "app");
        assert!(config["Volumes"]["/cache"].is_object());

        let config = applied(&["ENTRYPOINT /start --fast"]);
        assert_eq!(
            config["Entrypoint"],
            json!(["/bin/sh", "-c", "/start --fast"])
        );
        assert!(config["Cmd"].is_null());
    }

    #[test]
    fn bad_changes_say_why() {
        let mut config = Map::new();
        for (change, expected) in [
            ("RUN apt-get update", "cannot be a --change"),
            ("EXPOSE http", "EXPOSE takes"),
            ("CMD [\"unclosed\"", "not a JSON list"),
            ("ENV", "needs KEY=VALUE"),
            ("WORKDIR", "needs a value"),
            ("LABEL a=\"open", "unclosed quote"),
        ] {
            let err = apply(&mut config, change).unwrap_err().to_string();
            assert!(err.contains(expected), "{change}: {err}");
        }
    }

    #[test]
    fn words_split_as_a_shell_would() {
        assert_eq!(
            words(r#"a "b c" 'd \e' f\ g"#).unwrap(),
            ["a", "b c", "d \\e", "f g"]
        );
        assert_eq!(words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(words(r#""""#).unwrap(), [""]);
    }
}
