//! `--format` Go templates, as docker takes them: the template sees the
//! same object `--format json` prints (docker's field names), and has
//! docker's functions besides Go's own (`index`, `len`, `printf`, `eq`,
//! `range`, ...): `json`, `upper`, `lower`, `title`, `join`, `split`,
//! `truncate`, `pad`. A template that starts with `table` prints a header
//! row (the fields' names, upper case) and aligns the columns its `\t`s
//! separate, as docker's tables are.

use std::io::Write;

use anyhow::{anyhow, Context, Result};
use gtmpl::{FuncError, Template};
use gtmpl_value::Value as G;
use serde_json::Value;

use super::output::write_table;

/// A serde value as the template engine holds it.
fn to_template_value(value: &Value) -> G {
    match value {
        Value::Null => G::Nil,
        Value::Bool(b) => G::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => G::from(i),
            (None, Some(u)) => G::from(u),
            _ => G::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => G::String(s.clone()),
        Value::Array(items) => G::Array(items.iter().map(to_template_value).collect()),
        Value::Object(fields) => G::Map(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_template_value(v)))
                .collect(),
        ),
    }
}

/// Back to JSON, for `{{json .X}}`.
fn to_json(value: &G) -> Value {
    match value {
        G::Nil | G::NoValue | G::Function(_) => Value::Null,
        G::Bool(b) => Value::Bool(*b),
        G::String(s) => Value::String(s.clone()),
        G::Number(n) => serde_json::from_str(&n.to_string()).unwrap_or(Value::Null),
        G::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        G::Object(fields) | G::Map(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

fn text_of(value: &G) -> String {
    match value {
        G::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn arg<'a>(args: &'a [G], index: usize, name: &str) -> Result<&'a G, FuncError> {
    args.get(index)
        .ok_or_else(|| FuncError::Generic(format!("{name} needs {} arguments", index + 1)))
}

fn json(args: &[G]) -> Result<G, FuncError> {
    Ok(G::String(to_json(arg(args, 0, "json")?).to_string()))
}

fn upper(args: &[G]) -> Result<G, FuncError> {
    Ok(G::String(text_of(arg(args, 0, "upper")?).to_uppercase()))
}

fn lower(args: &[G]) -> Result<G, FuncError> {
    Ok(G::String(text_of(arg(args, 0, "lower")?).to_lowercase()))
}

fn title(args: &[G]) -> Result<G, FuncError> {
    let text = text_of(arg(args, 0, "title")?);
    let titled = text
        .split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    Ok(G::String(titled))
}

/// `join LIST SEPARATOR`.
fn join(args: &[G]) -> Result<G, FuncError> {
    let separator = text_of(arg(args, 1, "join")?);
    match arg(args, 0, "join")? {
        G::Array(items) => Ok(G::String(
            items
                .iter()
                .map(text_of)
                .collect::<Vec<_>>()
                .join(&separator),
        )),
        other => Ok(G::String(text_of(other))),
    }
}

/// `split TEXT SEPARATOR`.
fn split(args: &[G]) -> Result<G, FuncError> {
    let text = text_of(arg(args, 0, "split")?);
    let separator = text_of(arg(args, 1, "split")?);
    Ok(G::Array(
        text.split(separator.as_str())
            .map(|part| G::String(part.to_string()))
            .collect(),
    ))
}

/// `truncate TEXT N`: at most N characters.
fn truncate(args: &[G]) -> Result<G, FuncError> {
    let text = text_of(arg(args, 0, "truncate")?);
    let n: usize = text_of(arg(args, 1, "truncate")?)
        .parse()
        .map_err(|_| FuncError::Generic("truncate takes a number".into()))?;
    Ok(G::String(text.chars().take(n).collect()))
}

/// `pad TEXT LEFT RIGHT`: spaces around it.
fn pad(args: &[G]) -> Result<G, FuncError> {
    let text = text_of(arg(args, 0, "pad")?);
    let count = |index| -> Result<usize, FuncError> {
        text_of(arg(args, index, "pad")?)
            .parse()
            .map_err(|_| FuncError::Generic("pad takes numbers".into()))
    };
    Ok(G::String(format!(
        "{}{text}{}",
        " ".repeat(count(1)?),
        " ".repeat(count(2)?)
    )))
}

/// A compiled `--format` template.
pub struct Formatter {
    template: Template,
    /// With `table`: the header row's cells.
    header: Option<Vec<String>>,
}

/// The header docker prints for a field: its name in capitals, words
/// apart (`.RunningFor` is RUNNING FOR, `.ID` stays ID).
fn header_of(field: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = field.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let starts_word = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase()
                || chars.get(i + 1).is_some_and(|next| next.is_lowercase()));
        if starts_word {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// The header row of a `table` template: each tab-separated part's first
/// field, named as docker names it.
fn table_header(body: &str) -> Vec<String> {
    body.split("\\t")
        .flat_map(|part| part.split('\t'))
        .map(|part| {
            let field = part
                .split("{{")
                .nth(1)
                .and_then(|action| action.split("}}").next())
                .and_then(|action| action.split_whitespace().find(|w| w.starts_with('.')))
                .map(|path| path.rsplit('.').next().unwrap_or_default().to_string())
                .unwrap_or_default();
            header_of(&field)
        })
        .collect()
}

impl Formatter {
    pub fn new(text: &str) -> Result<Formatter> {
        let (body, header) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                let rest = rest.trim_start();
                (rest.to_string(), Some(table_header(rest)))
            }
            _ => (text.to_string(), None),
        };
        // docker reads `\t` and `\n` written out in the template as the
        // characters, since shells pass them literally.
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut template = Template::default();
        template.add_func("json", json);
        template.add_func("upper", upper);
        template.add_func("lower", lower);
        template.add_func("title", title);
        template.add_func("join", join);
        template.add_func("split", split);
        template.add_func("truncate", truncate);
        template.add_func("pad", pad);
        template
            .parse(&body)
            .map_err(|err| anyhow!("{err}"))
            .with_context(|| format!("the --format template {text:?}"))?;
        Ok(Formatter { template, header })
    }

    pub fn render(&self, value: &Value) -> Result<String> {
        let context = gtmpl::Context::from(to_template_value(value));
        self.template
            .render(&context)
            .map_err(|err| anyhow!("{err}"))
            .context("applying the --format template")
    }

    /// Each of `items` on a line of its own (a table's cells aligned).
    pub fn write_all(&self, out: &mut impl Write, items: &[Value]) -> Result<()> {
        let lines = items
            .iter()
            .map(|item| self.render(item))
            .collect::<Result<Vec<_>>>()?;
        match &self.header {
            Some(header) => {
                let rows: Vec<Vec<String>> = lines
                    .iter()
                    .map(|line| line.split('\t').map(str::to_string).collect())
                    .collect();
                let header: Vec<&str> = header.iter().map(String::as_str).collect();
                write_table(out, &header, &rows)?;
            }
            None => {
                for line in lines {
                    writeln!(out, "{line}")?;
                }
            }
        }
        Ok(())
    }
}

/// Renders `template` for each of `items` to stdout.
pub fn print_each(template: &str, items: &[Value]) -> Result<()> {
    let formatter = Formatter::new(template)?;
    formatter.write_all(&mut std::io::stdout().lock(), items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, value: Value) -> String {
        Formatter::new(template).unwrap().render(&value).unwrap()
    }

    #[test]
    fn templates_see_the_json_and_dockers_functions() {
        let container = json!({
            "Id": "abc123",
            "State": {"Status": "running", "Pid": 42, "Running": true},
            "Config": {"Labels": {"org.team": "core"}, "Env": ["A=1", "B=2"]},
            "Names": ["web"],
        });
        let table = [
            ("{{.State.Status}}", "running"),
            ("{{.State.Pid}}", "42"),
            ("{{index .Config.Labels \"org.team\"}}", "core"),
            ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
            ("{{join .Config.Env \",\"}}", "A=1,B=2"),
            (
                "{{json .State}}",
                r#"{"Pid":42,"Running":true,"Status":"running"}"#,
            ),
            (
                "{{upper .State.Status}} {{title \"hello world\"}}",
                "RUNNING Hello World",
            ),
            ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
            ("{{printf \"%s:%d\" .Id .State.Pid}}", "abc123:42"),
            ("{{len .Names}} {{truncate .Id 3}}", "1 abc"),
            ("{{index (split \"a/b\" \"/\") 1}}", "b"),
            ("{{.Id}}\\t{{.State.Status}}", "abc123\trunning"),
        ];
        for (template, want) in table {
            assert_eq!(render(template, container.clone()), want, "{template}");
        }
        assert!(Formatter::new("{{.Unclosed").is_err());
    }

    #[test]
    fn a_table_template_gets_a_header_and_aligned_columns() {
        let formatter =
            Formatter::new("table {{.ID}}\\t{{.RunningFor}}\\t{{upper .Names}}").unwrap();
        let mut out = vec![];
        formatter
            .write_all(
                &mut out,
                &[
                    json!({"ID": "a1", "RunningFor": "2 minutes ago", "Names": "web"}),
                    json!({"ID": "b22222", "RunningFor": "1 hour ago", "Names": "db"}),
                ],
            )
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["ID", "RUNNING", "FOR", "NAMES"]
        );
        assert!(
            lines[1].starts_with("a1 ")
                && lines[1].contains("2 minutes ago")
                && lines[1].ends_with("WEB")
        );
        assert_eq!(
            lines[1].find("2 minutes"),
            lines[2].find("1 hour"),
            "{text}"
        );
    }
}
