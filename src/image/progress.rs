//! What a pull shows while it runs: docker's plain lines when the output is not a
//! terminal, one `indicatif` bar per layer plus an overall line when it is, nothing with
//! `-q`.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A layer's short ID: the first 12 hex digits of its blob digest, as docker shows it.
pub type LayerId = String;

/// The events of one pull, from several threads.
pub trait Progress: Sync {
    /// `latest: Pulling from library/busybox`
    fn start(&self, what: &str, repo: &str);
    /// A layer to fetch, with its size.
    fn layer(&self, id: &LayerId, size: u64);
    /// A layer already in the store.
    fn exists(&self, id: &LayerId);
    /// Bytes of a layer read so far.
    fn bytes(&self, id: &LayerId, done: u64);
    /// Downloaded and verified; unpacking finished.
    fn complete(&self, id: &LayerId);
    /// The final lines (`Digest: ...`, `Status: ...`).
    fn line(&self, s: &str);
}

/// Where plain lines go (stdout for `pull`, stderr for `run`'s pull).
pub enum Sink {
    Stdout,
    Stderr,
}

impl Sink {
    /// One line. Layer threads report while the CLI waits: the caller must not hold the
    /// stream's lock meanwhile (`pull` is handed stdout unlocked for this).
    fn write(&self, s: &str) {
        let _ = match self {
            Sink::Stdout => writeln!(std::io::stdout().lock(), "{s}"),
            Sink::Stderr => writeln!(std::io::stderr().lock(), "{s}"),
        };
    }
}

/// `-q`: nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: &str) {}
    fn layer(&self, _: &LayerId, _: u64) {}
    fn exists(&self, _: &LayerId) {}
    fn bytes(&self, _: &LayerId, _: u64) {}
    fn complete(&self, _: &LayerId) {}
    fn line(&self, _: &str) {}
}

/// docker's lines for a pipe: one per event, no byte counts.
pub struct Plain(pub Sink);

impl Progress for Plain {
    fn start(&self, what: &str, repo: &str) {
        self.0.write(&format!("{what}: Pulling from {repo}"));
    }
    fn layer(&self, id: &LayerId, _: u64) {
        self.0.write(&format!("{id}: Pulling fs layer"));
    }
    fn exists(&self, id: &LayerId) {
        self.0.write(&format!("{id}: Already exists"));
    }
    fn bytes(&self, _: &LayerId, _: u64) {}
    fn complete(&self, id: &LayerId) {
        self.0.write(&format!("{id}: Pull complete"));
    }
    fn line(&self, s: &str) {
        self.0.write(s);
    }
}

/// A terminal: a bar per layer (bytes, rate) and an overall bar.
pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    layers: Mutex<Vec<(LayerId, ProgressBar, u64)>>,
}

impl Bars {
    pub fn new(sink: Sink) -> Bars {
        let target = match sink {
            Sink::Stdout => ProgressDrawTarget::stdout(),
            Sink::Stderr => ProgressDrawTarget::stderr(),
        };
        let multi = MultiProgress::with_draw_target(target);
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        total.set_prefix("total");
        total.enable_steady_tick(Duration::from_millis(200));
        Bars {
            multi,
            total,
            layers: Mutex::new(Vec::new()),
        }
    }

    fn bar(&self, id: &LayerId) -> Option<(ProgressBar, u64)> {
        let layers = self.layers.lock().unwrap();
        layers
            .iter()
            .find(|(i, _, _)| i == id)
            .map(|(_, b, done)| (b.clone(), *done))
    }
}

impl Progress for Bars {
    fn start(&self, what: &str, repo: &str) {
        let _ = self.multi.println(format!("{what}: Pulling from {repo}"));
    }
    fn layer(&self, id: &LayerId, size: u64) {
        let bar = self
            .multi
            .insert_before(&self.total, ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(id.clone());
        self.total.inc_length(size);
        self.layers.lock().unwrap().push((id.clone(), bar, 0));
    }
    fn exists(&self, id: &LayerId) {
        let _ = self.multi.println(format!("{id}: Already exists"));
    }
    fn bytes(&self, id: &LayerId, done: u64) {
        let mut layers = self.layers.lock().unwrap();
        if let Some((_, bar, before)) = layers.iter_mut().find(|(i, _, _)| i == id) {
            self.total.inc(done.saturating_sub(*before));
            *before = done;
            bar.set_position(done);
        }
    }
    fn complete(&self, id: &LayerId) {
        if let Some((bar, _)) = self.bar(id) {
            bar.finish_with_message("Pull complete");
        }
    }
    fn line(&self, s: &str) {
        self.total.finish();
        let _ = self.multi.println(s);
    }
}

/// The progress a pull shows: `quiet`, else bars on a terminal, else plain lines.
pub fn for_output(quiet: bool, sink: Sink) -> Box<dyn Progress> {
    use std::io::IsTerminal;
    let tty = match sink {
        Sink::Stdout => std::io::stdout().is_terminal(),
        Sink::Stderr => std::io::stderr().is_terminal(),
    };
    match (quiet, tty) {
        (true, _) => Box::new(Quiet),
        (false, true) => Box::new(Bars::new(sink)),
        (false, false) => Box::new(Plain(sink)),
    }
}
