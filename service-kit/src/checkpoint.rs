//! A small file beside each database saying what is known to be durable,
//! so that a data folder holding less than was acknowledged is refused at
//! start instead of being served as if nothing were missing.
//!
//! sled recovers its log up to the first damaged or missing part and
//! silently drops the rest: a folder whose `db` file was truncated or had a
//! block overwritten opens as an older state of itself, and one truncated to
//! nothing opens empty. Each service names figures that only ever grow (the
//! last outbox sequence, the last event applied) and records them here,
//! from values already flushed, every second and at shutdown. At open every
//! figure found in the database must be at least the one recorded.
//!
//! The file is written to a temporary name, synced, renamed over the old
//! one, and the folder synced, so it is always one whole version; it ends
//! with a CRC-32 of what precedes it.

use std::{
    collections::BTreeMap,
    fmt,
    fs::{self, File},
    io::{self, Write as _},
    path::{Path, PathBuf},
};

/// Named figures that only grow.
pub type Figures = BTreeMap<String, u64>;

/// The checkpoint file's name in the data folder.
pub const FILE_NAME: &str = "CHECKPOINT";

/// The file a service leaves in its data folder when it found damage while
/// serving; it holds what was found.
pub const DAMAGE_MARKER: &str = "DAMAGED";

/// Leaves the damage marker in `dir`, durably.
///
/// # Errors
///
/// I/O failures.
pub fn mark_damaged(dir: &Path, found: &str) -> io::Result<()> {
    let mut file = File::create(dir.join(DAMAGE_MARKER))?;
    file.write_all(found.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    File::open(dir)?.sync_all()
}

const VERSION_LINE: &str = "checkpoint v1";

/// What is wrong with a data folder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("its database holds data but there is no {FILE_NAME} file beside it")]
    MissingCheckpoint,
    #[error("its {FILE_NAME} file is damaged ({0})")]
    UnreadableCheckpoint(String),
    #[error("its database holds less than was acknowledged: {}", describe(.0))]
    Behind(Vec<Shortfall>),
    #[error("a page could not be read back while it was served ({0}); {DAMAGE_MARKER} marks it")]
    Marked(String),
}

/// One figure lower in the database than the checkpoint recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub figure: String,
    pub recorded: u64,
    pub found: u64,
}

fn describe(shortfalls: &[Shortfall]) -> String {
    shortfalls
        .iter()
        .map(|s| format!("{} is {} where {} was made durable", s.figure, s.found, s.recorded))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The checkpoint of one data folder.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
    dir: PathBuf,
}

impl Checkpoint {
    #[must_use]
    pub fn in_folder(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
            dir: dir.to_path_buf(),
        }
    }

    /// The recorded figures; `None` when there is no file.
    ///
    /// # Errors
    ///
    /// [`Damage::UnreadableCheckpoint`] for a file that cannot be read or
    /// does not check out.
    pub fn read(&self) -> Result<Option<Figures>, Damage> {
        let text = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Damage::UnreadableCheckpoint(e.to_string())),
        };
        parse(&text).map(Some).map_err(Damage::UnreadableCheckpoint)
    }

    /// Replaces the file with `figures`, durably.
    ///
    /// # Errors
    ///
    /// I/O failures.
    pub fn write(&self, figures: &Figures) -> io::Result<()> {
        let temporary = self.path.with_extension("tmp");
        {
            let mut file = File::create(&temporary)?;
            file.write_all(&render(figures))?;
            file.sync_all()?;
        }
        fs::rename(&temporary, &self.path)?;
        File::open(&self.dir)?.sync_all()
    }

    /// Checks a database's `found` figures against the checkpoint, and
    /// writes the first checkpoint of a new folder (`found` all zero).
    ///
    /// # Errors
    ///
    /// [`Damage`] naming what is wrong; I/O failures writing a first
    /// checkpoint are reported as damage too, since the folder cannot be
    /// trusted to keep one.
    pub fn check(&self, found: &Figures) -> Result<(), Damage> {
        if self.compare(found)?.is_none() {
            self.write(found)
                .map_err(|e| Damage::UnreadableCheckpoint(format!("cannot write it: {e}")))?;
        }
        Ok(())
    }

    /// Compares without writing: the recorded figures, or `None` for a new
    /// folder (no checkpoint, `found` all zero).
    ///
    /// # Errors
    ///
    /// [`Damage`] naming what is wrong.
    pub fn compare(&self, found: &Figures) -> Result<Option<Figures>, Damage> {
        if let Ok(marker) = fs::read_to_string(self.dir.join(DAMAGE_MARKER)) {
            return Err(Damage::Marked(marker.trim().to_owned()));
        }
        let Some(recorded) = self.read()? else {
            if found.values().all(|&v| v == 0) {
                return Ok(None);
            }
            return Err(Damage::MissingCheckpoint);
        };
        let behind: Vec<Shortfall> = recorded
            .iter()
            .filter_map(|(figure, &recorded)| {
                let found = found.get(figure).copied().unwrap_or(0);
                (found < recorded).then(|| Shortfall {
                    figure: figure.clone(),
                    recorded,
                    found,
                })
            })
            .collect();
        if behind.is_empty() {
            Ok(Some(recorded))
        } else {
            Err(Damage::Behind(behind))
        }
    }
}

fn render(figures: &Figures) -> Vec<u8> {
    let mut text = format!("{VERSION_LINE}\n");
    for (name, value) in figures {
        text.push_str(&format!("{name} {value}\n"));
    }
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("crc32 {crc:08x}\n"));
    text.into_bytes()
}

fn parse(bytes: &[u8]) -> Result<Figures, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not text".to_owned())?;
    let body_end = text
        .trim_end_matches('\n')
        .rfind('\n')
        .map(|i| i + 1)
        .ok_or_else(|| "too short".to_owned())?;
    let (body, trailer) = text.split_at(body_end);
    let crc = trailer
        .trim()
        .strip_prefix("crc32 ")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| "no checksum line".to_owned())?;
    if crc32fast::hash(body.as_bytes()) != crc {
        return Err("its checksum does not match".to_owned());
    }
    let mut lines = body.lines();
    if lines.next() != Some(VERSION_LINE) {
        return Err("unknown version".to_owned());
    }
    lines
        .map(|line| {
            let (name, value) = line.split_once(' ').ok_or_else(|| format!("bad line {line:?}"))?;
            let value = value.parse().map_err(|_| format!("bad value in {line:?}"))?;
            Ok((name.to_owned(), value))
        })
        .collect()
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} < {}", self.figure, self.found, self.recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(pairs: &[(&str, u64)]) -> Figures {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn a_new_folder_gets_a_checkpoint_and_a_grown_one_passes() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint::in_folder(dir.path());
        checkpoint.check(&figures(&[("outbox_sequence", 0)])).unwrap();
        assert_eq!(checkpoint.read().unwrap(), Some(figures(&[("outbox_sequence", 0)])));
        checkpoint.write(&figures(&[("outbox_sequence", 400)])).unwrap();
        checkpoint.check(&figures(&[("outbox_sequence", 400)])).unwrap();
        checkpoint.check(&figures(&[("outbox_sequence", 401)])).unwrap();
    }

    #[test]
    fn a_database_behind_its_checkpoint_is_damage_and_says_by_how_much() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint::in_folder(dir.path());
        checkpoint
            .write(&figures(&[("applied.invitation-service", 400), ("other", 3)]))
            .unwrap();
        let damage = checkpoint
            .check(&figures(&[("applied.invitation-service", 215), ("other", 3)]))
            .unwrap_err();
        assert_eq!(
            damage.to_string(),
            "its database holds less than was acknowledged: applied.invitation-service is 215 where 400 was made durable"
        );
        assert_eq!(
            checkpoint.check(&figures(&[("other", 3)])).unwrap_err().to_string(),
            "its database holds less than was acknowledged: applied.invitation-service is 0 where 400 was made durable"
        );
    }

    #[test]
    fn a_missing_or_garbled_checkpoint_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint::in_folder(dir.path());
        assert_eq!(
            checkpoint.check(&figures(&[("outbox_sequence", 7)])),
            Err(Damage::MissingCheckpoint)
        );
        checkpoint.write(&figures(&[("outbox_sequence", 7)])).unwrap();
        let mut text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        text = text.replace("outbox_sequence 7", "outbox_sequence 1");
        fs::write(dir.path().join(FILE_NAME), text).unwrap();
        assert!(matches!(
            checkpoint.check(&figures(&[("outbox_sequence", 7)])),
            Err(Damage::UnreadableCheckpoint(reason)) if reason.contains("checksum")
        ));
        fs::write(dir.path().join(FILE_NAME), b"").unwrap();
        assert!(matches!(checkpoint.read(), Err(Damage::UnreadableCheckpoint(_))));
    }
}
