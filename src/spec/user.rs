//! `--user` resolved against the rootfs's /etc/passwd and /etc/group.

use super::{ResolvedUser, SpecError};

/// The entries of a passwd or group file, split at ':'.
fn parse_id_entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
}

/// Resolve `USER[:GROUP]` (names or numbers) as runc/docker do: a numeric uid without a
/// passwd entry gets gid 0; supplementary groups come from /etc/group membership.
pub fn resolve_user(
    spec: Option<&str>,
    passwd: &str,
    group: &str,
) -> Result<ResolvedUser, SpecError> {
    let spec = spec.unwrap_or("0");
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = parse_id_entries(passwd)
        .find(|e| e.len() >= 4 && (e[0] == u || (u.parse::<u32>().is_ok() && e[2] == u)));
    let (uid, mut gid, user_name) = match (&entry, u.parse::<u32>()) {
        (Some(e), _) => (
            e[2].parse().unwrap_or(0),
            e[3].parse().unwrap_or(0),
            Some(e[0].to_string()),
        ),
        (None, Ok(n)) => (n, 0, None),
        (None, Err(_)) => return Err(SpecError::NoSuchUser(u.to_string())),
    };
    if let Some(g) = g {
        gid = match parse_id_entries(group).find(|e| e.len() >= 3 && e[0] == g) {
            Some(e) => e[2].parse().unwrap_or(0),
            None => g
                .parse::<u32>()
                .map_err(|_| SpecError::NoSuchGroup(g.to_string()))?,
        };
    }
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (user_name, g) {
        for e in parse_id_entries(group).filter(|e| e.len() >= 4) {
            if e[3].split(',').any(|m| m == name) {
                if let Ok(id) = e[2].parse::<u32>() {
                    if id != gid && !additional_gids.contains(&id) {
                        additional_gids.push(id);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        let group = "root:x:0:\nwww:x:33:\nbob:x:1000:\nwheel:x:10:bob,alice\naudio:x:29:bob\n";
        assert_eq!(
            resolve_user(None, passwd, group).unwrap(),
            ResolvedUser::default()
        );
        let bob = resolve_user(Some("bob"), passwd, group).unwrap();
        assert_eq!(
            (bob.uid, bob.gid, bob.additional_gids.clone()),
            (1000, 1000, vec![10, 29])
        );
        let b2 = resolve_user(Some("1000"), passwd, group).unwrap();
        assert_eq!(b2, bob);
        let n = resolve_user(Some("4242"), passwd, group).unwrap();
        assert_eq!((n.uid, n.gid), (4242, 0));
        let ug = resolve_user(Some("www:wheel"), passwd, group).unwrap();
        assert_eq!((ug.uid, ug.gid), (33, 10));
        assert_eq!(resolve_user(Some("5:6"), "", "").unwrap().gid, 6);
        assert!(resolve_user(Some("nobody2"), passwd, group).is_err());
        assert!(resolve_user(Some("bob:nogroup"), passwd, group).is_err());
    }
}
