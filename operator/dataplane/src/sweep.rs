//! Removing everything orbitnet owns: named namespaces under its prefix, interfaces whose
//! alias it set, routes with its protocol number. What a crashed run left behind goes too.

use crate::netlink::{Conn, NlError};
use crate::netns::{Netns, NetnsError};
use crate::{link, naming, route};

/// What a sweep removed, and what it could not.
#[derive(Debug, Default)]
pub struct Swept {
    pub namespaces: Vec<String>,
    pub interfaces: Vec<String>,
    pub routes: usize,
    pub failures: Vec<String>,
}

/// Deletes every named namespace whose name starts with `prefix` (the interfaces in them
/// go with them).
pub fn namespaces(prefix: &str, swept: &mut Swept) {
    for name in Netns::list_named().into_iter().filter(|n| n.starts_with(prefix)) {
        match Netns::delete(&name) {
            Ok(()) => swept.namespaces.push(name),
            Err(e @ NetnsError::Io { .. }) | Err(e @ NetnsError::Exists { .. }) => {
                swept.failures.push(e.to_string())
            }
        }
    }
}

/// In the connection's namespace: deletes the interfaces whose alias orbitnet set (for
/// `constellation`, or any) and orbitnet's routes.
pub fn interfaces_and_routes(
    conn: &mut Conn,
    constellation: Option<&str>,
    swept: &mut Swept,
) -> Result<(), NlError> {
    let ours = |alias: &str| match (naming::parse_alias(alias), constellation) {
        (Some(a), Some(c)) => a.constellation == c,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let routes = route::list(conn)?;
    let deletions = routes
        .iter()
        .map(|r| route::delete(format!("deleting route to {}", r.destination), r.destination))
        .collect();
    for result in conn.batch(deletions) {
        match result {
            Ok(()) => swept.routes += 1,
            // Already gone with an interface deleted before: fine.
            Err(e) if e.errno() == Some(3) => swept.routes += 1,
            Err(e) => swept.failures.push(e.to_string()),
        }
    }
    let doomed: Vec<link::Interface> =
        link::list(conn)?.into_iter().filter(|i| i.alias.as_deref().is_some_and(ours)).collect();
    let requests = doomed.iter().map(|i| link::delete(format!("deleting {}", i.name), i.index)).collect();
    for (iface, result) in doomed.iter().zip(conn.batch(requests)) {
        match result {
            Ok(()) => swept.interfaces.push(format!("{} ({})", iface.name, conn.netns())),
            // Deleting one veth end deletes its peer in the same namespace: fine.
            Err(e) if e.errno() == Some(link::ENODEV) => {
                swept.interfaces.push(format!("{} ({})", iface.name, conn.netns()))
            }
            Err(e) => swept.failures.push(e.to_string()),
        }
    }
    Ok(())
}
