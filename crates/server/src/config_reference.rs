//! The configuration reference (`docs/src/configuration.md`): every setting with its TOML key,
//! environment variable, type, default and description, rendered from the settings structs
//! themselves — descriptions and nesting from their JSON schema (the doc comments), defaults
//! and types from `Settings::default()` as the loader reads them — so the page cannot drift
//! from the code. `certmint config reference` prints it; a test compares it with the book.

use std::fmt::Write as _;

use serde_json::Value;

use crate::settings::{NOT_SETTINGS, Settings, SettingsError, setting_at};

/// The command that writes the page, for the test's message and the page's own header.
pub const REGENERATE: &str = "cargo run -- config reference > docs/src/configuration.md";

/// One setting as the page shows it.
struct Key {
    path: Vec<String>,
    description: String,
}

/// A TOML table and the settings directly in it.
struct Section {
    path: Vec<String>,
    description: String,
    keys: Vec<Key>,
}

/// The Markdown page.
///
/// # Errors
/// [`SettingsError`] when the defaults cannot be written as TOML, or a setting has no default
/// (the loader could not read it from the environment either).
pub fn markdown() -> Result<String, SettingsError> {
    let schema = schemars::schema_for!(Settings).to_value();
    let defaults = toml::Table::try_from(Settings::default())
        .map_err(|e| SettingsError::new(format!("default settings: {e}")))?;
    let mut sections = Vec::new();
    collect(&schema, &schema, Vec::new(), &mut sections);
    let mut out = String::from(HEADER);
    for (name, meaning) in NOT_SETTINGS {
        let _ = writeln!(out, "| `CERTMINT_{name}` | {meaning} |");
    }
    out.push('\n');
    for section in sections.iter().filter(|s| !s.keys.is_empty()) {
        if section.path.is_empty() {
            out.push_str("## Top level\n\n");
        } else {
            let _ = writeln!(out, "## `[{}]`\n", section.path.join("."));
        }
        if !section.description.is_empty() {
            let _ = writeln!(out, "{}\n", section.description);
        }
        for key in &section.keys {
            render(&mut out, key, &defaults)?;
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    Ok(out)
}

const HEADER: &str = "<!-- Generated from crates/server/src/settings.rs by \
`certmint config reference`; do not edit. -->

# Configuration reference

Settings come from the defaults, then a TOML file (`--config FILE` or `CERTMINT_CONFIG`), then
`CERTMINT_<KEY>` environment variables, then the flags of `certmint serve`. In the environment a
nested key takes `__` between its names (`[acme.validation] http_port` is
`CERTMINT_ACME__VALIDATION__HTTP_PORT`), a list is comma-separated, and a table is
`name=value` pairs, comma-separated. A boolean is `true` or `false` (in the environment also
`1`/`0`, `yes`/`no`, `on`/`off`). Unknown keys, in the file or as `CERTMINT_*` variables, are
refused at start.

Settings marked *live* can also be changed while certmint runs, with
`PATCH /api/v2/settings/general` as `admin:system` (the login rate limit also with
`PUT /api/v2/system/security/rate-limit`, which turns it off and on with `enabled`). A value set
that way is stored in the database and wins over the file's from then on; every node sharing the
database takes it up within a second, and each change is audited with its old and new values
(`settings_updated`). A new `session_absolute_minutes` holds for sessions started after the
change. The other settings are read at start: the API refuses them (422), and a change in the
file needs a restart, or SIGHUP, which makes `certmint serve` read its settings again in the same
process. `GET /api/v2/settings/general` lists every setting with its value, its source
(`default`, `file` or `database`) and whether it is `live` or `restart`.

These `CERTMINT_*` variables are not settings; secrets are read only from the environment:

| variable | holds |
|---|---|
";

/// Gathers the sections under the object schema `node` (at `path`), resolving `$ref`s against
/// `root`. Tables of settings become sections of their own; maps (such as
/// `acme.validation.hosts`) are settings.
fn collect(root: &Value, node: &Value, path: Vec<String>, sections: &mut Vec<Section>) {
    let node = resolve(root, node);
    let mut section = Section {
        path: path.clone(),
        description: paragraphs(node.get("description")),
        keys: Vec::new(),
    };
    let mut nested = Vec::new();
    let mut properties: Vec<_> = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    properties.sort_by(|a, b| a.0.cmp(b.0));
    for (name, property) in properties {
        let mut key_path = path.clone();
        key_path.push(name.clone());
        if resolve(root, property).get("properties").is_some() {
            nested.push((key_path, property));
        } else {
            section.keys.push(Key {
                path: key_path,
                description: paragraphs(property.get("description")),
            });
        }
    }
    sections.push(section);
    for (key_path, property) in nested {
        collect(root, property, key_path, sections);
    }
}

/// The schema `node` stands for: itself, or the definition its `$ref` names.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| root.pointer(pointer))
        .unwrap_or(node)
}

/// A doc comment as Markdown: its lines joined, its paragraphs kept.
fn paragraphs(description: Option<&Value>) -> String {
    description
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Writes one setting.
fn render(out: &mut String, key: &Key, defaults: &toml::Table) -> Result<(), SettingsError> {
    let dotted = key.path.join(".");
    let default = setting_at(defaults, &key.path)
        .ok_or_else(|| SettingsError::new(format!("{dotted} has no default")))?;
    let kind = match default {
        toml::Value::Integer(_) => "integer",
        toml::Value::Boolean(_) => "boolean",
        toml::Value::Array(_) => "list of strings",
        toml::Value::Table(_) => "table of strings",
        _ => "string",
    };
    let env = format!(
        "CERTMINT_{}",
        key.path
            .iter()
            .map(|p| p.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join("__")
    );
    let applies = if key.path.len() == 1 && authority::LIVE_SETTINGS.contains(&dotted.as_str()) {
        "*live*"
    } else {
        "at start"
    };
    let _ = write!(
        out,
        "### `{dotted}`\n\n{}\n\n\
         | TOML | environment | type | default | applies |\n\
         |---|---|---|---|---|\n\
         | `{}` | `{env}` | {kind} | `{}` | {applies} |\n\n",
        key.description,
        key.path.last().map_or("", String::as_str),
        default_text(default),
    );
    Ok(())
}

/// The default as TOML writes it (`""`, `[]` and `{}` for the empty ones).
fn default_text(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(t) if t.is_empty() => "{}".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_books_configuration_page_is_what_the_code_generates() -> Result<(), SettingsError> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/src/configuration.md"
        );
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == markdown()?,
            "docs/src/configuration.md differs from the settings in crates/server/src/settings.rs; \
             regenerate it with `{REGENERATE}`"
        );
        Ok(())
    }

    #[test]
    fn lists_every_setting_with_its_environment_name() -> Result<(), SettingsError> {
        let page = markdown()?;
        for expected in [
            "### `public_url`",
            "`CERTMINT_PUBLIC_URL`",
            "## `[acme.validation]`",
            "### `acme.validation.hosts`",
            "`CERTMINT_ACME__VALIDATION__HOSTS` | table of strings | `{}`",
            "`CERTMINT_LISTEN` | string | `\"127.0.0.1:8443\"`",
            "`CERTMINT_PASSWORD_MIN_LENGTH` | integer | `12` | *live*",
            "`CERTMINT_BACKUP__MAX_UPLOAD_BYTES` | integer | `4294967296` | at start",
            "| `CERTMINT_MASTER_KEY` |",
        ] {
            assert!(page.contains(expected), "{expected} missing from:\n{page}");
        }
        assert!(!page.contains("### `file`"), "not a setting: {page}");
        assert!(
            !page.contains("## `[acme]`"),
            "a table of tables only: {page}"
        );
        let keys = page.matches("\n### `").count();
        let defaults = toml::Table::try_from(Settings::default())
            .map_err(|e| SettingsError::new(e.to_string()))?;
        let leaves = leaf_count(&defaults);
        assert_eq!(keys, leaves, "one entry per setting");
        Ok(())
    }

    /// Settings in `table`, counting a table of plain values (a map) as one.
    fn leaf_count(table: &toml::Table) -> usize {
        table
            .values()
            .map(|v| match v.as_table() {
                Some(t) if !t.is_empty() => leaf_count(t),
                _ => 1,
            })
            .sum()
    }
}
