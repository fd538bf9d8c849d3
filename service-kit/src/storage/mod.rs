//! What both services do alike with sled: open a data folder (telling a
//! folder in use and a damaged one from other failures), make writes
//! durable, and check the folder against its [`checkpoint`]; and what
//! their stores share: versioned [`record`]s and [`tx`] helpers.

pub mod record;
pub mod tx;

use std::{fs::File, path::Path, sync::Arc};

use crate::checkpoint::{self, Checkpoint, Figures};

/// Why a data folder cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("it is in use by another process")]
    Locked,
    #[error("{0}")]
    Damaged(String),
    #[error(transparent)]
    Sled(sled::Error),
}

impl From<sled::Error> for OpenError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => Self::Locked,
            sled::Error::Corruption { .. } => Self::Damaged(format!("sled cannot read it ({e})")),
            other @ (sled::Error::Io(_)
            | sled::Error::CollectionNotFound(_)
            | sled::Error::Unsupported(_)
            | sled::Error::ReportableBug(_)) => Self::Sled(other),
        }
    }
}

impl From<checkpoint::Damage> for OpenError {
    fn from(damage: checkpoint::Damage) -> Self {
        Self::Damaged(damage.to_string())
    }
}

/// An open database and its log file, opened again to sync it.
#[derive(Debug, Clone)]
pub struct Database {
    pub db: sled::Db,
    log: Arc<File>,
}

impl Database {
    /// Opens (or creates) the sled database in `path`.
    ///
    /// # Errors
    ///
    /// [`OpenError::Locked`] when another process holds the folder,
    /// [`OpenError::Damaged`] when sled cannot read what is there.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let db = sled::Config::new().path(path).mode(sled::Mode::HighThroughput).open()?;
        let log = Arc::new(File::open(path.join("db")).map_err(sled::Error::Io)?);
        Ok(Self { db, log })
    }

    /// Reads every entry of every tree, so that sled checks every page it
    /// loads: the offline part of `verify` (no start-up path does this).
    /// Returns the entries per tree.
    ///
    /// # Errors
    ///
    /// The first page sled cannot read.
    pub fn read_everything(&self) -> Result<Vec<(String, u64)>, sled::Error> {
        let mut counts = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name)?;
            let mut entries = 0;
            for entry in &tree {
                entry?;
                entries += 1;
            }
            counts.push((String::from_utf8_lossy(&name).into_owned(), entries));
        }
        Ok(counts)
    }

    /// Makes everything written so far durable. sled's own flush writes its
    /// log with `sync_file_range`, which neither records the file's new size
    /// nor empties the disk's write cache; `fdatasync` on the same file does
    /// both, so an acknowledged change survives a power cut too.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn flush(&self) -> Result<(), sled::Error> {
        let started = std::time::Instant::now();
        self.db.flush()?;
        self.log.sync_data().map_err(sled::Error::Io)?;
        crate::metrics::storage()
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// Checks the figures `found` in the database of the folder `path`
/// against its checkpoint (writing the first one of a new folder).
///
/// # Errors
///
/// [`OpenError::Damaged`] naming what is wrong.
pub fn check_against_checkpoint(path: &Path, found: &Figures) -> Result<(), OpenError> {
    Ok(Checkpoint::in_folder(path).check(found)?)
}

/// The message for a folder refused as damaged: what is wrong, and the way
/// out.
#[must_use]
pub fn damaged_message(service: &str, path: &Path, problem: &str) -> String {
    format!(
        "data folder {} is damaged: {problem}. {service} does not serve a folder that may have lost \
         acknowledged changes. Restore the folder from a backup (docs/operations.md tells how), or \
         move it away to start empty; `{service} verify --data-dir {}` reports on it",
        path.display(),
        path.display()
    )
}

/// Opens a store with `open` on the blocking pool, then checks the figures
/// it reports against the folder's checkpoint.
///
/// # Errors
///
/// What [`Database::open`] and [`check_against_checkpoint`] report, and
/// `open`'s or `figures`' own failures.
pub async fn open_checked<S: Send + 'static>(
    path: std::path::PathBuf,
    open: impl FnOnce(&Path) -> Result<S, OpenError> + Send + 'static,
    figures: impl FnOnce(&S) -> Result<Figures, OpenError> + Send + 'static,
) -> Result<S, OpenError> {
    tokio::task::spawn_blocking(move || {
        let store = open(&path)?;
        check_against_checkpoint(&path, &figures(&store)?)?;
        Ok(store)
    })
    .await
    .map_err(|e| OpenError::Damaged(format!("opening it failed: {e}")))?
}

/// How often the checkpoint follows what has been made durable.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps the folder's checkpoint up with `durable()` (figures already on
/// disk), writing it when they changed, every [`CHECKPOINT_INTERVAL`], until
/// the task is aborted. A checkpoint that cannot be written is a storage
/// fault.
#[must_use]
pub fn spawn_checkpointer(
    path: &Path,
    durable: impl Fn() -> Figures + Send + 'static,
    fail: crate::failstop::FailStop,
) -> tokio::task::JoinHandle<()> {
    let checkpoint = Checkpoint::in_folder(path);
    tokio::spawn(async move {
        // Written at the first tick, then whenever the figures change.
        let mut written: Option<Figures> = None;
        let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let figures = durable();
            if fail.is_tripped() || written.as_ref() == Some(&figures) {
                continue;
            }
            let checkpoint = checkpoint.clone();
            let to_write = figures.clone();
            match tokio::task::spawn_blocking(move || checkpoint.write(&to_write)).await {
                Ok(Ok(())) => written = Some(figures),
                Ok(Err(e)) => fail.trip(&format!("cannot write the checkpoint: {e}")),
                Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
            }
        }
    })
}

/// Writes the folder's checkpoint once more at shutdown, after the last
/// flush, so that it holds everything.
pub async fn write_final_checkpoint(path: &Path, figures: Figures) {
    let checkpoint = Checkpoint::in_folder(path);
    match tokio::task::spawn_blocking(move || checkpoint.write(&figures)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot write the final checkpoint"),
        Err(e) => tracing::error!(error = %e, "final checkpoint task failed"),
    }
}

/// The `verify` subcommand: checks the data folder `path` offline and
/// prints what it found. Exit 0 when sound, 1 when damaged or not a data
/// folder, 2 when it cannot be checked (in use, unreadable).
pub fn verify<S>(
    service: &str,
    path: &Path,
    open: impl FnOnce(&Path) -> Result<S, OpenError>,
    database: impl FnOnce(&S) -> &Database,
    figures: impl FnOnce(&S) -> Result<Figures, OpenError>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    println!("{service} verify: {}", path.display());
    if !path.join("db").is_file() {
        println!("  not a {service} data folder: there is no database (db) in it");
        return ExitCode::from(1);
    }
    let damaged = |problem: &str| {
        println!("  DAMAGED: {problem}");
        println!("  {}", damaged_message(service, path, problem));
        ExitCode::from(1)
    };
    let store = match open(path) {
        Ok(store) => store,
        Err(OpenError::Locked) => {
            println!("  cannot check it: it is in use by a running {service}; stop it first, or verify a copy");
            return ExitCode::from(2);
        }
        Err(OpenError::Damaged(problem)) => return damaged(&problem),
        Err(OpenError::Sled(e)) => {
            println!("  cannot check it: {e}");
            return ExitCode::from(2);
        }
    };
    let found = match figures(&store) {
        Ok(found) => found,
        Err(OpenError::Damaged(problem)) => return damaged(&problem),
        Err(e) => {
            println!("  cannot check it: {e}");
            return ExitCode::from(2);
        }
    };
    match database(&store).read_everything() {
        Ok(counts) => {
            for (tree, entries) in counts {
                println!("  tree {tree}: {entries} entries, all readable");
            }
        }
        Err(e) => return damaged(&format!("sled cannot read all of it ({e})")),
    }
    match Checkpoint::in_folder(path).compare(&found) {
        Ok(recorded) => {
            for (figure, value) in &found {
                let at_checkpoint = recorded.as_ref().and_then(|r| r.get(figure)).copied().unwrap_or(0);
                println!("  {figure}: {value} (checkpoint: {at_checkpoint})");
            }
            if recorded.is_none() {
                println!("  new and empty: no checkpoint yet");
            }
            println!("  sound");
            ExitCode::SUCCESS
        }
        Err(damage) => damaged(&damage.to_string()),
    }
}

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub destination: std::path::PathBuf,
    pub figures: Figures,
    pub entries: u64,
    pub took: std::time::Duration,
}

/// Why a backup was not made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the destination must be an absolute path on the server's machine")]
    NotAbsolute,
    #[error("the destination {} exists and is not an empty folder", .0.display())]
    NotEmpty(std::path::PathBuf),
    #[error("cannot write the backup to {}: {error}", path.display())]
    Destination { path: std::path::PathBuf, error: String },
    #[error("reading the database failed: {0}")]
    Source(sled::Error),
}

impl BackupError {
    /// The status for a refused backup: one refused for its destination is
    /// the caller's to fix; one that failed reading the database is the
    /// server's (and logged). Each service's error mapping calls it.
    #[must_use]
    pub fn status(&self) -> tonic::Status {
        use tonic_types::StatusExt as _;
        match self {
            Self::NotAbsolute | Self::NotEmpty(_) => tonic::Status::with_error_details(
                tonic::Code::InvalidArgument,
                self.to_string(),
                tonic_types::ErrorDetails::with_bad_request_violation("destination", self.to_string()),
            ),
            Self::Destination { .. } => tonic::Status::failed_precondition(self.to_string()),
            Self::Source(_) => {
                tracing::error!(error = %self, "backup failed");
                tonic::Status::internal("the backup failed reading the database (logged on the server)")
            }
        }
    }
}

/// Copies every tree of `source` into a new database in `destination`,
/// flushes it and writes its checkpoint with `figures` (which must describe
/// what `source` holds). The caller makes sure nothing writes to `source`
/// meanwhile, so the copy is one instant's state.
///
/// # Errors
///
/// A destination that is not absolute, not empty or not writable; a source
/// that cannot be read.
pub fn backup(source: &Database, destination: &Path, figures: Figures) -> Result<BackupReport, BackupError> {
    let started = std::time::Instant::now();
    if !destination.is_absolute() {
        return Err(BackupError::NotAbsolute);
    }
    if destination.exists()
        && std::fs::read_dir(destination)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(true)
    {
        return Err(BackupError::NotEmpty(destination.to_path_buf()));
    }
    let write_error = |error: String| BackupError::Destination {
        path: destination.to_path_buf(),
        error,
    };
    std::fs::create_dir_all(destination).map_err(|e| write_error(e.to_string()))?;
    let target = Database::open(destination).map_err(|e| write_error(e.to_string()))?;
    let mut entries = 0;
    for name in source.db.tree_names() {
        let from = source.db.open_tree(&name).map_err(BackupError::Source)?;
        let to = target.db.open_tree(&name).map_err(|e| write_error(e.to_string()))?;
        for entry in &from {
            let (key, value) = entry.map_err(BackupError::Source)?;
            to.insert(key, value).map_err(|e| write_error(e.to_string()))?;
            entries += 1;
        }
    }
    target.flush().map_err(|e| write_error(e.to_string()))?;
    Checkpoint::in_folder(destination)
        .write(&figures)
        .map_err(|e| write_error(e.to_string()))?;
    let report = BackupReport {
        destination: destination.to_path_buf(),
        figures,
        entries,
        took: started.elapsed(),
    };
    tracing::info!(
        destination = %report.destination.display(),
        entries = report.entries,
        took_ms = report.took.as_millis(),
        "backup made"
    );
    Ok(report)
}
