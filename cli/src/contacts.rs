//! `veil contacts`: names for the people you send to and receive from.

use crate::cli::ContactsCmd;
use anyhow::{Context, Result};
use std::io::Write;
use veil_client::{ClientError, Contacts, Home};
use veil_format::escape_text;

/// `veil contacts ...`.
pub(crate) fn run(home: &Home, cmd: ContactsCmd) -> Result<()> {
    match cmd {
        ContactsCmd::Add { name, identity, bundle } => add(home, &name, identity.as_deref(), bundle.as_deref()),
        ContactsCmd::List { json } => list(home, json),
        ContactsCmd::Remove { name } => remove(home, &name),
    }
}

fn remove(home: &Home, name: &str) -> Result<()> {
    let mut c = Contacts::load(home)?;
    if !c.remove(name) {
        return Err(ClientError::Usage(format!("{} is not one of your contacts", escape_text(name))).into());
    }
    c.save(home)?;
    eprintln!("Removed {}", escape_text(name));
    Ok(())
}

pub(crate) fn add(home: &Home, name: &str, id: Option<&str>, bundle: Option<&std::path::Path>) -> Result<()> {
    let given = id.map(veil_format::identity::PublicIdentity::decode).transpose()?;
    let public = match (given, bundle) {
        (given, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let b = veil_format::pq::KeyBundle::decode(&bytes)?;
            if let Some(g) = &given {
                b.check_for(g)?;
            }
            b.identity()
        }
        (Some(g), None) => g,
        (None, None) => return Err(ClientError::Usage("give an identity string or --bundle FILE".into()).into()),
    };
    let mut c = Contacts::load(home)?;
    let n = c.add(name, &public)?;
    c.save(home)?;
    eprintln!("Added {} ({})", escape_text(&n), public.fingerprint());
    Ok(())
}

fn list(home: &Home, json: bool) -> Result<()> {
    let list = Contacts::load(home)?.list();
    let mut so = std::io::stdout().lock();
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|(n, p)| serde_json::json!({"name": n, "fingerprint": p.fingerprint(), "identity": p.encode()}))
            .collect();
        writeln!(so, "{}", serde_json::Value::Array(v))?;
    } else if list.is_empty() {
        eprintln!("No contacts yet: `veil contacts add NAME IDENTITY`");
    } else {
        for (n, p) in list {
            writeln!(so, "{:<24} {}", escape_text(&n), p.fingerprint())?;
        }
    }
    Ok(())
}
