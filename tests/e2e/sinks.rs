//! The receivers themselves, before any service is judged by them: the SMTP
//! sink spoken to in raw SMTP, the webhook receiver in raw HTTP/1.1, neither
//! through the clients notification-service uses.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use e2e::sinks::{SmtpSink, WebhookReceiver};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A message as a mail client sends it: multipart, encoded, and with a line
/// that starts with a dot (which SMTP stuffs).
const MESSAGE: &str = "From: Discreet Invitations <notifications@localhost>\r\n\
To: Bob <bob@example.com>\r\n\
Subject: =?utf-8?q?Alice_invited_you_=E2=9C=89?=\r\n\
Message-ID: <n1@localhost>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative;\r\n boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Alice invited you to tea=2E\r\n\
.a line that starts with a dot\r\n\
--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PHA+QWxpY2UgaW52aXRlZCB5b3UgdG8gPGI+dGVhPC9iPjwvcD4=\r\n\
--b1--\r\n";

/// A client speaking SMTP line by line.
struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the sink");
        // A sink that never answers fails the test instead of hanging it.
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut smtp = Self {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        };
        assert_eq!(smtp.reply(), 220, "greeting");
        assert_eq!(smtp.command("EHLO client.test"), 250);
        smtp
    }

    /// The code of the next reply, after all its lines.
    fn reply(&mut self) -> u16 {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.reader.read_line(&mut line).expect("a reply") > 0,
                "connection closed"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                return line[..3].parse().expect("a reply code");
            }
        }
    }

    fn command(&mut self, line: &str) -> u16 {
        // One write: pieces would wait on Nagle's algorithm.
        self.writer.write_all(format!("{line}\r\n").as_bytes()).expect("send");
        self.reply()
    }

    /// MAIL, RCPT and DATA up to the body: the code DATA got.
    fn begin(&mut self) -> u16 {
        assert_eq!(self.command("MAIL FROM:<notifications@localhost>"), 250);
        assert_eq!(self.command("RCPT TO:<bob@example.com>"), 250);
        self.command("DATA")
    }

    /// The body, dot-stuffed, and the final dot: the code that got.
    fn finish(&mut self, message: &str) -> u16 {
        let mut data = String::new();
        for line in message.split_inclusive("\r\n") {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
        }
        // The end of data; `command` adds its line break.
        data.push('.');
        self.command(&data)
    }

    fn send(&mut self, message: &str) -> u16 {
        assert_eq!(self.begin(), 354);
        self.finish(message)
    }
}

#[test]
fn smtp_sink_keeps_a_message_sent_over_raw_smtp() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = SmtpSink::start(dir.path());
    assert_eq!(sink.url(), format!("smtp://127.0.0.1:{}", sink.port()));
    let mut smtp = Smtp::connect(sink.port());
    assert_eq!(smtp.send(MESSAGE), 250);
    assert_eq!(smtp.command("QUIT"), 221);

    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert!(mail.file.ends_with("mail/000001.eml"), "{}", mail.file.display());
    assert_eq!(mail.raw, MESSAGE, "kept byte for byte, unstuffed");
    assert_eq!(mail.subject, "Alice invited you ✉");
    assert_eq!(mail.from, "notifications@localhost");
    assert_eq!(mail.to, ["bob@example.com"]);
    assert_eq!(mail.message_id, "n1@localhost");
    assert_eq!(mail.text, "Alice invited you to tea.\r\n.a line that starts with a dot");
    assert_eq!(mail.html, "<p>Alice invited you to <b>tea</b></p>");
    assert_eq!(
        mail.header("content-type"),
        Some("multipart/alternative; boundary=\"b1\""),
        "unfolded"
    );
    assert_eq!(mail.headers.len(), 6);
}

#[test]
fn smtp_sink_answers_the_code_in_its_reply_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = SmtpSink::start(dir.path());
    let mut smtp = Smtp::connect(sink.port());

    sink.set_reply(Some(451));
    assert_eq!(smtp.command("MAIL FROM:<notifications@localhost>"), 451);
    sink.set_reply(Some(550));
    assert_eq!(smtp.command("MAIL FROM:<notifications@localhost>"), 550);

    // Refused at the end of DATA, after the whole message went over.
    sink.set_reply(None);
    assert_eq!(smtp.begin(), 354);
    sink.set_reply(Some(451));
    assert_eq!(smtp.finish(MESSAGE), 451);
    assert!(sink.mails().is_empty(), "a refused message is not kept");

    // The same connection goes on, as a client's does after a refusal.
    sink.set_reply(None);
    assert_eq!(smtp.command("RSET"), 250);
    assert_eq!(smtp.send(MESSAGE), 250);
    assert_eq!(smtp.command("QUIT"), 221);
    assert_eq!(sink.mails().len(), 1);
}

#[test]
fn smtp_sink_survives_kill_and_restart_on_the_same_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sink = SmtpSink::start(dir.path());
    let port = sink.port();
    assert_eq!(Smtp::connect(port).send(MESSAGE), 250);

    sink.kill();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens while killed"
    );
    sink.restart();
    assert_eq!(sink.port(), port);
    assert_eq!(Smtp::connect(port).send(MESSAGE), 250);

    let names: Vec<_> = sink
        .mails()
        .iter()
        .map(|m| m.file.file_name().expect("a name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["000001.eml", "000002.eml"], "numbering goes on after a restart");
}

/// The Standard Webhooks specification's test vector.
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TIMESTAMP: &str = "1614265330";
const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

/// POSTs `body` with the specification's headers; the status.
async fn post(addr: SocketAddr, body: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST /hook HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nwebhook-id: {SPEC_ID}\r\n\
         webhook-timestamp: {SPEC_TIMESTAMP}\r\nwebhook-signature: {SPEC_SIGNATURE}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("response");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[tokio::test]
async fn webhook_receiver_accepts_the_specification_test_vector_and_rejects_a_tampered_body() {
    let receiver = WebhookReceiver::start(SPEC_SECRET).await;
    assert_eq!(receiver.url(), format!("http://{}/hook", receiver.addr()));
    let before = Instant::now();
    assert_eq!(post(receiver.addr(), SPEC_BODY).await, 204);
    assert_eq!(post(receiver.addr(), r#"{"test": 2432232315}"#).await, 401);

    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    let good = &calls[0];
    assert_eq!(good.id, SPEC_ID);
    assert_eq!(good.timestamp, 1_614_265_330);
    assert_eq!(good.signature, SPEC_SIGNATURE);
    assert!(good.verified);
    assert!(!good.fresh, "signed in 2021");
    assert_eq!(good.body, serde_json::json!({"test": 2_432_232_314_u64}));
    assert_eq!(good.status_returned, 204);
    assert!(good.received_at >= before);
    let tampered = &calls[1];
    assert!(!tampered.verified && !tampered.fresh);
    assert_eq!(tampered.status_returned, 401);
}

#[tokio::test]
async fn webhook_receiver_answers_as_scripted_then_204_and_slowly_when_told() {
    let receiver = WebhookReceiver::start(SPEC_SECRET).await;
    receiver.respond_with(vec![500, 503]);
    assert_eq!(post(receiver.addr(), SPEC_BODY).await, 500);
    assert_eq!(
        post(receiver.addr(), "{}").await,
        401,
        "a bad signature takes no scripted status"
    );
    assert_eq!(post(receiver.addr(), SPEC_BODY).await, 503);
    assert_eq!(post(receiver.addr(), SPEC_BODY).await, 204);

    receiver.set_delay(Duration::from_millis(300));
    let sent = Instant::now();
    assert_eq!(post(receiver.addr(), SPEC_BODY).await, 204);
    assert!(sent.elapsed() >= Duration::from_millis(300));
    let statuses: Vec<_> = receiver.calls().iter().map(|c| c.status_returned).collect();
    assert_eq!(statuses, [500, 401, 503, 204, 204]);
}
