//! A real SMTP server for tests that keeps what it accepts in a folder a
//! person can read:
//!
//! ```text
//! smtp_sink --listen 127.0.0.1:0 --dir DIR
//! ```
//!
//! Once it accepts connections, `DIR/port` holds the port it bound. Each
//! message it accepts becomes `DIR/mail/NNNNNN.eml` (the raw RFC 5322 bytes,
//! numbered on from what the folder holds, so a restart goes on counting).
//! While `DIR/reply` holds a code such as `451` or `550`, it answers MAIL
//! FROM and the end of DATA with that code and keeps nothing: a test's fault
//! switch. No TLS and no AUTH: it listens on loopback for tests only.
//!
//! The protocol is mailin's state machine; the sockets are plain threads.

#![forbid(unsafe_code)]

use std::{
    ffi::OsString,
    fs,
    io::{self, BufRead as _, BufReader, Write as _},
    net::{IpAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use e2e::sinks::write_atomically;
use mailin::{Action, Handler, Response, Session, SessionBuilder, response};

const USAGE: &str = "usage: smtp_sink --listen ADDR --dir DIR";
/// The name in the greeting.
const NAME: &str = "smtp-sink";
/// A client silent for this long is dropped, so that a test's stuck client
/// does not keep a thread forever.
const IDLE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let (listen, dir) = match parse_args(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("smtp_sink: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&listen, &dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtp_sink: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<(String, PathBuf), String> {
    let (mut listen, mut dir) = (None, None);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{} needs a value", flag.to_string_lossy()))?;
        match flag.to_str() {
            Some("--listen") => listen = Some(value.into_string().map_err(|_| "--listen is not UTF-8")?),
            Some("--dir") => dir = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {}", flag.to_string_lossy())),
        }
    }
    Ok((listen.ok_or("--listen is required")?, dir.ok_or("--dir is required")?))
}

fn run(listen: &str, dir: &Path) -> io::Result<()> {
    let mailbox = Arc::new(Mailbox::open(dir)?);
    let listener = TcpListener::bind(listen)?;
    let port = listener.local_addr()?.port();
    write_atomically(&dir.join("port"), port.to_string().as_bytes())?;
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let mailbox = Arc::clone(&mailbox);
                thread::spawn(move || {
                    if let Err(e) = converse(stream, &mailbox) {
                        eprintln!("smtp_sink: connection: {e}");
                    }
                });
            }
            Err(e) => eprintln!("smtp_sink: accept: {e}"),
        }
    }
    Ok(())
}

/// One SMTP connection, line by line, until QUIT or the client leaves.
fn converse(stream: TcpStream, mailbox: &Arc<Mailbox>) -> io::Result<()> {
    let peer = stream.peer_addr()?.ip();
    stream.set_read_timeout(Some(IDLE))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let builder = SessionBuilder::new(NAME);
    let mut session = builder.build(peer, Receiver::new(mailbox));
    send(&mut writer, &session.greeting())?;
    let mut in_data = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let ends_data = in_data && line == b".\r\n";
        let reply = session.process(&line);
        match reply.action {
            Action::NoReply => {}
            Action::Reply => send(&mut writer, &reply)?,
            // No STARTTLS is offered, so an upgrade never comes.
            Action::Close | Action::UpgradeTls => return send(&mut writer, &reply),
        }
        if reply.code == 354 {
            in_data = true;
        } else if ends_data {
            in_data = false;
            if reply.is_error {
                // mailin stays in DATA after a refused message, taking the
                // client's next command for more of it; a new session in the
                // greeted state lets the client go on (RSET, MAIL or QUIT).
                session = greeted(&builder, peer, mailbox);
            }
        }
    }
}

/// Writes a reply in one piece: mailin writes the code and the text
/// separately, and Nagle's algorithm would hold the second write back for the
/// client's delayed acknowledgement (40 ms a reply).
fn send(writer: &mut TcpStream, reply: &Response) -> io::Result<()> {
    writer.write_all(&reply.buffer()?)
}

fn greeted(builder: &SessionBuilder, peer: IpAddr, mailbox: &Arc<Mailbox>) -> Session<Receiver> {
    let mut session = builder.build(peer, Receiver::new(mailbox));
    let hello = session.process(format!("EHLO {NAME}\r\n").as_bytes());
    debug_assert_eq!(hello.code, 250, "a fresh session accepts EHLO");
    session
}

/// The handler of one connection: collects a message and hands it to the
/// mailbox, unless a fault is set.
struct Receiver {
    mailbox: Arc<Mailbox>,
    message: Vec<u8>,
}

impl Receiver {
    fn new(mailbox: &Arc<Mailbox>) -> Self {
        Self {
            mailbox: Arc::clone(mailbox),
            message: Vec::new(),
        }
    }
}

impl Handler for Receiver {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.mailbox.fault().unwrap_or(response::OK)
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, _to: &[String]) -> Response {
        self.message.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.message.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = std::mem::take(&mut self.message);
        if let Some(fault) = self.mailbox.fault() {
            return fault;
        }
        match self.mailbox.store(&message) {
            Ok(name) => Response::custom(250, format!("OK kept as {name}")),
            Err(e) => {
                eprintln!("smtp_sink: cannot keep a message: {e}");
                response::INTERNAL_ERROR
            }
        }
    }
}

/// The folder: the messages kept, and the fault switch.
struct Mailbox {
    dir: PathBuf,
    mail: PathBuf,
    /// The number of the next message; the lock also orders the writes.
    next: Mutex<u64>,
}

impl Mailbox {
    fn open(dir: &Path) -> io::Result<Self> {
        let mail = dir.join("mail");
        fs::create_dir_all(&mail)?;
        let mut last = 0;
        for entry in fs::read_dir(&mail)? {
            let name = entry?.file_name();
            if let Some(n) = name.to_str().and_then(|n| n.strip_suffix(".eml")?.parse::<u64>().ok()) {
                last = last.max(n);
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            mail,
            next: Mutex::new(last + 1),
        })
    }

    /// Keeps `message`, returning its file name.
    fn store(&self, message: &[u8]) -> io::Result<String> {
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = format!("{:06}.eml", *next);
        write_atomically(&self.mail.join(&name), message)?;
        *next += 1;
        Ok(name)
    }

    /// The reply `DIR/reply` asks for, read afresh each time so that a test
    /// can flip it between two commands.
    fn fault(&self) -> Option<Response> {
        let path = self.dir.join("reply");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                eprintln!("smtp_sink: cannot read {}: {e}", path.display());
                return None;
            }
        };
        match text.trim().parse::<u16>() {
            Ok(code @ 400..=599) => Some(Response::custom(code, format!("refused as {} asks", path.display()))),
            Ok(_) | Err(_) => {
                eprintln!("smtp_sink: {} should hold a code from 400 to 599", path.display());
                None
            }
        }
    }
}
