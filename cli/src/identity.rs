//! `veil identity new|show`: derive the passphrase identity once (Argon2id), keep the seed
//! in `VEIL_HOME/identity.json` (0600).

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use veil_client::Home;
use veil_format::SecretKey;
use veil_format::identity::{DEFAULT_PASSPHRASE_WORDS, Identity, KdfParams, check_passphrase, generate_passphrase};
use zeroize::Zeroizing;

#[derive(Serialize, Deserialize)]
struct Stored {
    handle: String,
    kdf: u8,
    seed: String,
    identity: String,
    fingerprint: String,
}

/// Load the saved identity, if any.
pub fn load(home: &Home) -> Result<Option<Identity>> {
    Ok(load_full(home)?.map(|(id, _)| id))
}

/// Load the saved identity and its handle, if any.
pub fn load_full(home: &Home) -> Result<Option<(Identity, String)>> {
    let Some(s) = home.read_json::<Stored>("identity.json")? else { return Ok(None) };
    let seed = Zeroizing::new(
        hex::decode(&s.seed).ok().and_then(|v| <[u8; 32]>::try_from(v).ok()).context("identity.json is corrupt")?,
    );
    let id = Identity::from_seed(SecretKey::from_bytes(*seed), KdfParams::from_version(s.kdf)?);
    Ok(Some((id, s.handle)))
}

/// `veil identity export`: the public identity string alone (and, with `--bundle`, the
/// key bundle written to a file).
pub fn export(home: &Home, bundle: Option<std::path::PathBuf>) -> Result<()> {
    let Some(id) = load(home)? else { bail!("no identity yet; run `veil identity new`") };
    if let Some(path) = bundle {
        std::fs::write(&path, id.key_bundle().encode()).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Wrote your key bundle to {}", path.display());
    }
    println!("{}", id.public().encode());
    Ok(())
}

/// `veil identity publish`: put our key bundle on the relay.
pub async fn publish(home: &Home, relay: Option<String>) -> Result<()> {
    let Some(id) = load(home)? else { bail!("no identity yet; run `veil identity new`") };
    let fingerprint = id.public().fingerprint();
    let addr = crate::common::relay_addr(home, relay)?;
    let relay = crate::common::connect(addr, home, Some(id)).await?;
    let r = veil_client::bundle::publish(&relay).await;
    relay.close().await;
    r?;
    eprintln!("Published the post-quantum key of {fingerprint}");
    Ok(())
}

/// One line on what guessing a passphrase of `bits` bits costs against Argon2id V1.
fn guessing_cost(bits: u32) -> String {
    // A generous attacker: 10 000 Argon2id (256 MiB, t=3) guesses a second, e.g. a few
    // hundred GPUs; on average half the space is searched.
    const RATE: f64 = 10_000.0;
    let secs = 2f64.powi(bits as i32 - 1) / RATE;
    let when = match secs {
        s if s < 60.0 => "under a minute".to_string(),
        s if s < 3600.0 => format!("about {:.0} minutes", s / 60.0),
        s if s < 86400.0 => format!("about {:.0} hours", s / 3600.0),
        s if s < 86400.0 * 365.0 => format!("about {:.0} days", s / 86400.0),
        s => format!("about {:.0e} years", s / (86400.0 * 365.0)),
    };
    format!("an attacker testing 10 000 guesses a second offline finds a {bits}-bit passphrase in {when} on average")
}

/// `veil identity new`.
pub fn new(
    home: &Home,
    handle: Option<String>,
    passphrase_file: Option<std::path::PathBuf>,
    weak_ok: bool,
    json: bool,
) -> Result<()> {
    let handle = handle.or_else(|| std::env::var("VEIL_HANDLE").ok()).filter(|h| !h.trim().is_empty());
    let Some(handle) = handle else {
        bail!("a handle is needed: --handle NAME or VEIL_HANDLE (e.g. your e-mail address)")
    };
    let mut generated = false;
    let pass: Zeroizing<String> = if let Ok(p) = std::env::var("VEIL_PASSPHRASE") {
        Zeroizing::new(p)
    } else if let Some(f) = passphrase_file {
        Zeroizing::new(
            std::fs::read_to_string(&f)
                .with_context(|| format!("reading {}", f.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        )
    } else if std::io::stdin().is_terminal() {
        let p = Zeroizing::new(
            rpassword::prompt_password("Passphrase (empty to generate one): ").context("reading the passphrase")?,
        );
        if p.is_empty() {
            generated = true;
            generate_passphrase(DEFAULT_PASSPHRASE_WORDS)
        } else {
            let again = Zeroizing::new(rpassword::prompt_password("Again: ").context("reading the passphrase")?);
            if *again != *p {
                bail!("the passphrases differ");
            }
            p
        }
    } else {
        generated = true;
        generate_passphrase(DEFAULT_PASSPHRASE_WORDS)
    };
    if let Err(e) = check_passphrase(&pass) {
        let bits = veil_format::identity::estimate_bits(&pass);
        if !weak_ok {
            bail!("{e}; {}. Pass --i-know-it-is-weak to use it anyway", guessing_cost(bits));
        }
        eprintln!("warning: {e}; {}", guessing_cost(bits));
    }
    eprintln!("Deriving your identity (Argon2id, 256 MiB; about a second)...");
    let id = Identity::derive(&pass, &handle, KdfParams::V1)?;
    let public = id.public();
    home.write_json(
        "identity.json",
        &Stored {
            handle: handle.clone(),
            kdf: id.params().version,
            seed: hex::encode(id.seed().expose()),
            identity: public.encode(),
            fingerprint: public.fingerprint(),
        },
    )?;
    if generated {
        eprintln!("Your new passphrase (write it down; it is shown only once):\n\n    {}\n", pass.as_str());
    }
    print_public(&id, json);
    eprintln!(
        "People can send to you with `veil send --to` once your post-quantum key is on the relay: run `veil identity publish` (`veil inbox` does it too)."
    );
    Ok(())
}

/// `veil identity show`.
pub fn show(home: &Home, json: bool) -> Result<()> {
    let Some(id) = load(home)? else { bail!("no identity yet; run `veil identity new`") };
    print_public(&id, json);
    Ok(())
}

fn print_public(id: &Identity, json: bool) {
    let p = id.public();
    if json {
        println!("{}", serde_json::json!({"identity": p.encode(), "fingerprint": p.fingerprint()}));
    } else {
        println!("identity:    {}", p.encode());
        println!("fingerprint: {}", p.fingerprint());
        // A QR code of the identity string, for a phone to scan; only on a terminal.
        // Upper case: the QR code's compact alphanumeric mode (identity strings are
        // case-insensitive).
        if let Some(art) = crate::qr::for_terminal(
            &p.encode().to_uppercase(),
            true,
            std::io::IsTerminal::is_terminal(&std::io::stdout()),
        ) {
            println!("\n{art}");
        }
        if !crate::ui::quiet() {
            eprintln!(
                "\nGive people this identity; they add you with:\n\n    veil contacts add YOUR-NAME {}\n",
                p.encode()
            );
            eprintln!("and send to you with `veil send --to YOUR-NAME FILE`; you fetch it with `veil receive`.");
        }
    }
}
