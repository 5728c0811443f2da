//! A progress bar on stderr for layer reads, shown only on a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use palisade_image::Progress;

/// Bytes read over all layers, and layers done.
#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar when stderr is a terminal and not quiet; hidden otherwise.
    pub fn new(enabled: bool) -> Bar {
        let bar = if enabled {
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        Bar { bar }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn start(&self, layers: usize, bytes: u64) {
        let template = if bytes > 0 {
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
        } else {
            "{spinner} {msg} {bytes} {bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_length(bytes);
        self.bar.set_message(format!("reading {layers} layer(s)"));
        self.bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn layer_done(&self, idx: usize) {
        self.bar.set_message(format!("layer {} done", idx + 1));
    }
}
