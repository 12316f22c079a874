//! `ocishim-monitor`: the per-container monitor as a binary of its own. It links only what
//! the monitor runs (relay, reaping, the exit record, `--rm`'s teardown), not the CLI, the
//! registry client or TLS: a smaller executable keeps an idle monitor's resident pages
//! where they were before pulls came (README, "Pulling from a registry"). ocishim execs it
//! from the directory it runs from, and runs the monitor itself (`ocishim __monitor`)
//! when the file is not there.

/// As `ocishim`'s (same reasons).
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == ocishim::monitor::ARGV_TAG) {
        std::process::exit(ocishim::monitor::main_from_args(&args[2..]));
    }
    eprintln!("ocishim-monitor: run by ocishim only");
    std::process::exit(125);
}
