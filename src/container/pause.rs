//! `pause` and `resume`: the runtime's pause/resume (the cgroup freezer). Paused is read
//! back from the freezer, not recorded.

use super::{running_container, Context};
use crate::error::Error;

pub fn pause(ctx: &Context, query: &str) -> Result<String, Error> {
    let (id, paused, rt) = running_container(ctx, query)?;
    if paused {
        return Err(Error::AlreadyPaused(id));
    }
    rt.pause(&id)?;
    Ok(id)
}

pub fn resume(ctx: &Context, query: &str) -> Result<String, Error> {
    let (id, paused, rt) = running_container(ctx, query)?;
    if !paused {
        return Err(Error::NotPaused(id));
    }
    rt.resume(&id)?;
    Ok(id)
}
