//! Screen and media for `veil stream --screen | --file` (ffmpeg) and players for
//! `veil watch --play` (mpv, ffplay). The ffmpeg command line is built by a pure
//! function, printed, then run with its MPEG-TS output read as the stream.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use veil_client::ClientError;

/// What ffmpeg captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Capture {
    /// The screen: x11grab of `display` on Linux/BSD, avfoundation on macOS, gdigrab on
    /// Windows.
    Screen {
        /// The X display (`:0`); Linux and the BSDs only.
        display: Option<String>,
    },
    /// A media file, read at its own pace (`-re`).
    File(PathBuf),
}

/// How ffmpeg encodes: frame rate, optional output size, optional length.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoding {
    /// Frames per second of the screen capture (and the keyframe interval: one every 2 s).
    pub(crate) fps: u32,
    /// Output size `WIDTHxHEIGHT` (scaled), else the source's.
    pub(crate) size: Option<(u32, u32)>,
    /// Stop after this many seconds.
    pub(crate) seconds: Option<f64>,
}

/// The operating system the capture runs on (a parameter, so every variant is testable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Os {
    /// Linux and the BSDs: X11 (x11grab).
    Unix,
    /// macOS: avfoundation.
    Mac,
    /// Windows: gdigrab.
    Windows,
}

impl Os {
    /// The one this program was built for.
    pub(crate) fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::Mac
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Unix
        }
    }
}

/// `1280x720`.
pub(crate) fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("{s:?}: expected WIDTHxHEIGHT, e.g. 1280x720"))?;
    let dim = |v: &str| v.trim().parse::<u32>().ok().filter(|n| (16..=8192).contains(n) && n % 2 == 0);
    match (dim(w), dim(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!("{s:?}: width and height must be even numbers from 16 to 8192")),
    }
}

/// ffmpeg's arguments (without the program name): capture, H.264 ultrafast/zerolatency
/// (2.5 Mbit/s, a keyframe every 2 s so late viewers start fast), MPEG-TS on stdout.
pub(crate) fn ffmpeg_args(capture: &Capture, enc: &Encoding, os: Os) -> Result<Vec<String>> {
    let mut a: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin"].map(String::from).to_vec();
    let fps = enc.fps.to_string();
    match capture {
        Capture::Screen { display } => match os {
            Os::Unix => {
                let Some(d) = display.as_deref().filter(|d| !d.is_empty()) else {
                    return Err(ClientError::Usage(
                        "--screen needs an X display and DISPLAY is not set (on Wayland run it under XWayland, or pipe your compositor's recorder into `veil stream`)".into(),
                    )
                    .into());
                };
                a.extend(["-f", "x11grab", "-framerate", &fps, "-draw_mouse", "1", "-i", d].map(String::from));
            }
            Os::Mac => a.extend(
                ["-f", "avfoundation", "-framerate", &fps, "-capture_cursor", "1", "-i", "Capture screen 0:none"]
                    .map(String::from),
            ),
            Os::Windows => a.extend(["-f", "gdigrab", "-framerate", &fps, "-i", "desktop"].map(String::from)),
        },
        Capture::File(p) => {
            a.extend(["-re", "-i"].map(String::from));
            a.push(p.display().to_string());
        }
    }
    if let Some(s) = enc.seconds {
        a.extend(["-t".into(), format!("{s}")]);
    }
    let gop = (enc.fps.max(1) * 2).to_string();
    a.extend(["-map", "0:v:0"].map(String::from));
    if matches!(capture, Capture::File(_)) {
        a.extend(["-map", "0:a:0?", "-c:a", "aac", "-b:a", "128k"].map(String::from));
    }
    let scale = match enc.size {
        Some((w, h)) => format!("scale={w}:{h}"),
        // H.264 in yuv420p needs even dimensions; screens are not always so.
        None => "scale=trunc(iw/2)*2:trunc(ih/2)*2".into(),
    };
    a.extend(["-vf".into(), scale]);
    a.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-g",
            &gop,
            "-b:v",
            "2500k",
            "-maxrate",
            "2500k",
            "-bufsize",
            "5000k",
            "-f",
            "mpegts",
            "-",
        ]
        .map(String::from),
    );
    Ok(a)
}

/// The command line as a person would type it (for the "Running:" line).
pub(crate) fn shell_line(program: &str, args: &[String]) -> String {
    let quote = |s: &str| {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/=+,@%".contains(c)) {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    std::iter::once(program).chain(args.iter().map(String::as_str)).map(quote).collect::<Vec<_>>().join(" ")
}

/// The package to install for a missing program, per platform.
fn install_hint(program: &str) -> String {
    format!(
        "{program} not found: install it (Debian/Ubuntu: apt install {program}; Fedora: dnf install {program}; macOS: brew install {program}; Windows: winget install {program})"
    )
}

/// A clear one-line error when `program` is not on PATH (before anything is started).
pub(crate) fn require(program: &str) -> Result<()> {
    if find_in_path(program).is_none() && find_in_path(&format!("{program}.exe")).is_none() {
        return Err(ClientError::Usage(install_hint(program)).into());
    }
    Ok(())
}

/// Start ffmpeg with its standard output piped (the MPEG-TS stream); its errors go to
/// our standard error. The command is printed first.
pub(crate) fn spawn_ffmpeg(args: &[String], quiet: bool) -> Result<Child> {
    if !quiet {
        eprintln!("Running: {}", shell_line("ffmpeg", args));
    }
    Command::new("ffmpeg")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ClientError::Usage(install_hint("ffmpeg")).into(),
            _ => anyhow::Error::new(e).context("starting ffmpeg"),
        })
}

/// A player reading the stream on its standard input: VEIL_PLAYER (a command line,
/// split on spaces) if set, else mpv, else ffplay, tuned for low latency.
pub(crate) fn player() -> Result<(String, Vec<String>)> {
    if let Some(cmd) = std::env::var("VEIL_PLAYER").ok().filter(|v| !v.trim().is_empty()) {
        let mut words = cmd.split_whitespace().map(String::from);
        if let Some(p) = words.next() {
            return Ok((p, words.collect()));
        }
    }
    if find_in_path("mpv").is_some() {
        let args = ["--no-cache", "--profile=low-latency", "--untimed", "--really-quiet", "-"];
        return Ok(("mpv".into(), args.map(String::from).to_vec()));
    }
    if find_in_path("ffplay").is_some() {
        let args = ["-hide_banner", "-loglevel", "error", "-fflags", "nobuffer", "-flags", "low_delay", "-framedrop"];
        let mut v: Vec<String> = args.map(String::from).to_vec();
        v.extend(["-autoexit".into(), "-i".into(), "-".into()]);
        return Ok(("ffplay".into(), v));
    }
    Err(ClientError::Usage(
        "--play needs mpv or ffplay and neither is on PATH: install one (apt install mpv, or apt install ffmpeg for ffplay), set VEIL_PLAYER, or pipe instead: `veil watch CODE | mpv -`".into(),
    )
    .into())
}

/// Start the player with its standard input piped.
pub(crate) fn spawn_player(program: &str, args: &[String]) -> Result<Child> {
    Command::new(program).args(args).stdin(Stdio::piped()).spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ClientError::Usage(install_hint(program)).into(),
        _ => anyhow::Error::new(e).context(format!("starting {program}")),
    })
}

/// `program` in a PATH folder, if there.
fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file() || p.with_extension("exe").is_file()
    }
}

/// Wait for ffmpeg after the stream ended: its failure is the command's failure.
pub(crate) fn finish_ffmpeg(mut child: Child) -> Result<()> {
    let status = child.wait().context("waiting for ffmpeg")?;
    if !status.success() {
        anyhow::bail!("ffmpeg failed ({status}); its error is above");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc() -> Encoding {
        Encoding { fps: 30, size: None, seconds: None }
    }

    #[test]
    fn screen_on_x11_is_x11grab_h264_low_latency_in_mpegts() {
        let a = ffmpeg_args(&Capture::Screen { display: Some(":99".into()) }, &enc(), Os::Unix).unwrap_or_default();
        let line = shell_line("ffmpeg", &a);
        for part in [
            "-f x11grab -framerate 30",
            "-i :99",
            "-c:v libx264 -preset ultrafast -tune zerolatency",
            "-g 60",
            "-f mpegts -",
        ] {
            assert!(line.contains(part), "{part} missing: {line}");
        }
    }

    #[test]
    fn screen_without_display_is_a_usage_error() {
        assert!(ffmpeg_args(&Capture::Screen { display: None }, &enc(), Os::Unix).is_err());
    }

    #[test]
    fn mac_and_windows_capture_devices() {
        let mac = ffmpeg_args(&Capture::Screen { display: None }, &enc(), Os::Mac).unwrap_or_default();
        assert!(shell_line("ffmpeg", &mac).contains("-f avfoundation"));
        let win = ffmpeg_args(&Capture::Screen { display: None }, &enc(), Os::Windows).unwrap_or_default();
        assert!(shell_line("ffmpeg", &win).contains("-f gdigrab -framerate 30 -i desktop"));
    }

    #[test]
    fn file_at_its_own_pace_with_size_and_length() {
        let e = Encoding { fps: 10, size: Some((640, 360)), seconds: Some(2.5) };
        let a = ffmpeg_args(&Capture::File("my movie.mkv".into()), &e, Os::Unix).unwrap_or_default();
        let line = shell_line("ffmpeg", &a);
        assert!(line.contains("-re -i 'my movie.mkv'"), "{line}");
        assert!(line.contains("-t 2.5") && line.contains("scale=640:360") && line.contains("-c:a aac"), "{line}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert!(parse_size("1281x720").is_err());
        assert!(parse_size("big").is_err());
    }
}
