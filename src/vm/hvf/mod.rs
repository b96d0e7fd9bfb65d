//! The Hypervisor.framework backend's platform-independent half: everything it computes
//! without calling the framework, compiled and unit-tested on every host.
//!
//! - [`pagetable`]: the guest's stage-1 translation tables, built and edited by the host.
//! - [`esr`]: decoding exception syndromes into [`super::VcpuExit`]s.
//!
//! The part that calls `applevisor` is not written yet.

pub mod esr;
pub mod pagetable;
