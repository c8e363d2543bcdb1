//! E-mail, sent by dcmon itself (lettre over SMTP, STARTTLS or TLS, login from a
//! password file): one message per group of alerts (see `notify`).

use dcmon_inventory::{Smtp, SmtpTls};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Sends one message; an error says what failed.
pub async fn send(smtp: &Smtp, subject: String, body: String) -> Result<(), String> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("from `{}`: {e}", smtp.from))?;
    let mut message = Message::builder().from(from).subject(subject);
    for to in &smtp.to {
        message = message.to(to.parse().map_err(|e| format!("to `{to}`: {e}"))?);
    }
    let message = message.body(body).map_err(|e| e.to_string())?;
    let builder = match smtp.tls {
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
        SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
        SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &smtp.host,
        )),
    }
    .map_err(|e| format!("{}: {e}", smtp.host))?;
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(20)));
    if let Some((user, file)) = &smtp.login {
        let password = std::fs::read_to_string(file)
            .map_err(|e| format!("password_file {}: {e}", file.display()))?;
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.trim_end().to_string(),
        ));
    }
    builder
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("{}:{}: {e}", smtp.host, smtp.port))
}
