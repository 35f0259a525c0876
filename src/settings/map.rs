//! The one table-valued getter, [`Section::str_map`]: a table of strings
//! such as a program's environment (`env = { LANG = "C.UTF-8" }`).
//!
//! Kept apart from the scalar getters because a table arrives in two
//! shapes: flattened into one file key per entry (`services.x.env.LANG`,
//! as every table of the file is) or as one line of text from `--set` or
//! the environment (`LANG=C.UTF-8,TZ=UTC`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{ConfigError, Origin, Raw, Section};

impl Section<'_> {
    /// A table of strings, `NAME = "value"` (`NAME=value,NAME2=value2` as
    /// text), `None` when unset. Each of the file's entries is marked read
    /// here, so none is an unknown key; a later layer's text replaces the
    /// whole table. Empty names and names holding `=`, `.` or NUL are
    /// refused, and so are values holding NUL.
    ///
    /// # Errors
    /// Not a table of strings, or an entry that is not `NAME=value`.
    pub fn str_map(&self, field: &str) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
        self.declare(field, || super::Shape::Table);
        let prefix = format!("{}.", self.key(field));
        let from_file: Vec<(String, toml::Value, PathBuf)> = self
            .layers
            .file
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, (v, path))| (k[prefix.len()..].to_owned(), v.clone(), path.clone()))
            .collect();
        self.layers.read.borrow_mut().0.extend(
            from_file
                .iter()
                .map(|(name, _, _)| format!("{prefix}{name}")),
        );
        let expected = "expected a table of NAME = \"value\"";
        let (map, origin): (BTreeMap<String, String>, Origin) = match self.value(field)? {
            Some((Raw::Text(t), origin)) => {
                let map = t
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|item| {
                        let (name, value) = item.split_once('=').ok_or_else(|| {
                            let msg = format!("expected NAME=value,NAME2=value2, got `{item}`");
                            self.err(field, origin.clone(), msg)
                        })?;
                        Ok((name.trim().to_owned(), value.to_owned()))
                    })
                    .collect::<Result<_, ConfigError>>()?;
                (map, origin)
            }
            Some((_, origin)) => return Err(self.err(field, origin, expected)),
            None => {
                let Some((_, _, path)) = from_file.first() else {
                    return Ok(None);
                };
                let origin = Origin::File(path.clone());
                let map = from_file
                    .into_iter()
                    .map(|(name, value, _)| match value {
                        toml::Value::String(v) => Ok((name, v)),
                        _ => {
                            let msg = format!("{expected}; `{name}` is not a string");
                            Err(self.err(field, origin.clone(), msg))
                        }
                    })
                    .collect::<Result<_, ConfigError>>()?;
                (map, origin)
            }
        };
        if let Some(bad) = map
            .keys()
            .find(|n| n.is_empty() || n.contains(['=', '.', '\0']))
        {
            let msg = format!("`{}` is not a name", bad.escape_debug());
            return Err(self.err(field, origin, msg));
        }
        if let Some((name, _)) = map.iter().find(|(_, v)| v.contains('\0')) {
            let msg = format!("the value of `{}` holds a NUL byte", name.escape_debug());
            return Err(self.err(field, origin, msg));
        }
        let as_toml = |map: &BTreeMap<String, String>| {
            toml::Value::Table(
                map.iter()
                    .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
                    .collect(),
            )
        };
        Ok(Some(self.keep(field, map, as_toml)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::super::{ConfigError, FileSource, Layers};

    fn layers(file: &str, flags: &[&str]) -> Layers {
        let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
        let file = FileSource {
            path: Path::new("/etc/s.toml"),
            text: file,
        };
        Layers::new(Some(file), &BTreeMap::new(), &flags).unwrap()
    }

    #[test]
    fn a_file_table_is_read_whole_and_its_entries_are_known_keys() {
        let l = layers("[s.x]\nenv = { LANG = \"C.UTF-8\", TZ = \"UTC\" }\n", &[]);
        let map = l.section("s.x").str_map("env").unwrap().unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["LANG"], "C.UTF-8");
        let typed = l.typed_values();
        assert_eq!(typed["s.x.env"]["TZ"].as_str(), Some("UTC"));
        assert!(l.finish(&[]).unwrap().is_empty(), "no key left unread");
    }

    #[test]
    fn text_replaces_the_file_table() {
        let l = layers("[s.x.env]\nA = \"1\"\n", &["s.x.env=B=2, C=x=y"]);
        let map = l.section("s.x").str_map("env").unwrap().unwrap();
        let want: BTreeMap<String, String> = [("B", "2"), ("C", "x=y")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        assert_eq!(map, want);
        assert!(l.finish(&[]).is_ok());
    }

    #[test]
    fn unset_is_none_and_bad_shapes_name_the_key() {
        let l = layers("", &[]);
        assert_eq!(l.section("s.x").str_map("env").unwrap(), None);
        for (file, flags) in [
            ("[s.x.env]\nA = 1\n", vec![]),
            ("[s.x]\nenv = \"A=1\"\n", vec![]),
            ("", vec!["s.x.env=A"]),
            ("", vec!["s.x.env=A.B=1"]),
            ("[s.x.env.A]\nB = \"1\"\n", vec![]),
        ] {
            let l = layers(file, &flags);
            let err = l.section("s.x").str_map("env").unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadValue { key, .. } if key == "s.x.env"),
                "{file} {flags:?}: {err}"
            );
        }
    }
}
