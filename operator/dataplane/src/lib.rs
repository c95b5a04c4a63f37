//! orbitnet's dataplane: the only code that talks to the kernel. It turns the model's link
//! state into network namespaces, veth / VXLAN interfaces, addresses, netem qdiscs and
//! routes, through netlink, and reads them back. It knows no physics and owns no clock:
//! runners tell it what they want, and it applies the difference.

pub mod apply;
pub mod build;
pub mod link;
pub mod naming;
pub mod netem;
pub mod netlink;
pub mod netns;
pub mod preflight;
pub mod route;
pub mod sweep;
pub mod sysctl;
#[cfg(feature = "test-support")]
pub mod testing;

pub use apply::{Applier, ApplyReport, Conns, Wanted, Wiring};
pub use netem::Netem;
pub use netlink::{Conn, NlError, Request};
pub use netns::{Netns, NetnsError};
