//! The rollback guard of create and start: each step that makes something registers how
//! to undo it before the next step runs; on failure the guard undoes in reverse order.
//! An undo that fails is logged and returned (the caller keeps it in the record's
//! `Error` next to the original error), never dropped.

use std::fmt::Display;

type UndoFn<'a> = Box<dyn FnOnce() -> Result<(), String> + 'a>;

/// Undo actions of the steps done so far, in the order they were done.
#[must_use = "a rollback guard undoes everything when dropped uncommitted"]
pub struct Rollback<'a> {
    undos: Vec<(&'static str, UndoFn<'a>)>,
}

impl Default for Rollback<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Rollback<'a> {
    pub fn new() -> Self {
        Rollback { undos: Vec::new() }
    }

    /// Register the undo of `step`, which has just been done.
    pub fn push<E: Display>(
        &mut self,
        step: &'static str,
        undo: impl FnOnce() -> Result<(), E> + 'a,
    ) {
        self.undos
            .push((step, Box::new(move || undo().map_err(|e| e.to_string()))));
    }

    /// The steps registered so far, in order.
    pub fn steps(&self) -> Vec<&'static str> {
        self.undos.iter().map(|(s, _)| *s).collect()
    }

    /// Whether `step` has been done (and not kept).
    pub fn has(&self, step: &str) -> bool {
        self.undos.iter().any(|(s, _)| *s == step)
    }

    /// Keep what `step` made: its undo will not run (a failed create keeps its record,
    /// as docker's does). True when the step had been registered.
    pub fn keep(&mut self, step: &str) -> bool {
        let before = self.undos.len();
        self.undos.retain(|(s, _)| *s != step);
        self.undos.len() != before
    }

    /// Everything succeeded: nothing is undone.
    pub fn commit(mut self) {
        self.undos.clear();
    }

    /// Undo every registered step, last first. Returns the undos that failed, as
    /// "undo STEP: ERROR" (each also logged).
    pub fn undo(mut self) -> Vec<String> {
        self.run()
    }

    fn run(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        while let Some((step, undo)) = self.undos.pop() {
            tracing::debug!(step, "undo");
            if let Err(e) = undo() {
                tracing::warn!(step, "undo failed: {e}");
                failed.push(format!("undo {step}: {e}"));
            }
        }
        failed
    }
}

impl Drop for Rollback<'_> {
    /// A guard dropped neither committed nor undone (an early return) undoes all.
    fn drop(&mut self) {
        self.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn undoes_in_reverse_and_keeps_failures() {
        let log = RefCell::new(Vec::new());
        let mut rb = Rollback::new();
        rb.push("name", || {
            log.borrow_mut().push("name");
            Ok::<_, String>(())
        });
        rb.push("cgroup", || {
            log.borrow_mut().push("cgroup");
            Err("busy")
        });
        rb.push("bundle", || {
            log.borrow_mut().push("bundle");
            Ok::<_, String>(())
        });
        assert_eq!(rb.steps(), ["name", "cgroup", "bundle"]);
        assert!(rb.has("cgroup") && !rb.has("record"));
        let failed = rb.undo();
        assert_eq!(*log.borrow(), ["bundle", "cgroup", "name"]);
        assert_eq!(failed, ["undo cgroup: busy"]);
    }

    #[test]
    fn commit_undoes_nothing_and_drop_undoes_all() {
        let log = RefCell::new(Vec::new());
        let mut rb = Rollback::new();
        rb.push("a", || {
            log.borrow_mut().push("a");
            Ok::<_, String>(())
        });
        rb.commit();
        assert!(log.borrow().is_empty());
        let early_return = || -> Result<(), String> {
            let mut rb = Rollback::new();
            rb.push("b", || {
                log.borrow_mut().push("b");
                Ok::<_, String>(())
            });
            rb.push("c", || {
                log.borrow_mut().push("c");
                Ok::<_, String>(())
            });
            Err::<(), String>("step d failed".into())?;
            rb.commit();
            Ok(())
        };
        assert!(early_return().is_err());
        assert_eq!(*log.borrow(), ["c", "b"]);
    }

    #[test]
    fn kept_steps_are_not_undone() {
        let log = RefCell::new(Vec::new());
        let mut rb = Rollback::new();
        for step in ["name", "record", "bundle"] {
            let log = &log;
            rb.push(step, move || {
                log.borrow_mut().push(step);
                Ok::<_, String>(())
            });
        }
        assert!(rb.keep("record"));
        assert!(!rb.keep("record"));
        assert!(rb.undo().is_empty());
        assert_eq!(*log.borrow(), ["bundle", "name"]);
    }
}
