//! The Hypervisor.framework backend's platform-independent half: everything it computes
//! without calling the framework, compiled and unit-tested on every host.
//!
//! - [`pagetable`]: the guest's stage-1 translation tables, built and edited by the host.
//! - [`esr`]: decoding exception syndromes into [`super::VcpuExit`]s.
//! - [`protocol`]: what the EL1 shim and the host tell each other on each `hvc` exit.
//! - [`layout`]: where guest memory, the shim and the tables sit in the VM's IPA space.
//!
//! The part that calls `applevisor` is not written yet; see "The hvf backend" in
//! `docs/internals.md`.

pub mod esr;
pub mod layout;
pub mod pagetable;
pub mod protocol;
