//! elfuse runs aarch64 Linux programs without a Linux kernel: it loads the ELF itself, runs
//! the guest's code on a CPU backend (Hypervisor.framework on Apple Silicon, the unicorn
//! emulator elsewhere) and serves every Linux syscall in host-side Rust.
//!
//! The crate is layered from the CLI down:
//! - [`cli`]: the command line (`elfuse PROG`, `elfuse exec`, `elfuse selftest`).
//! - [`launcher`]: finding the program and deciding how to run it.
//! - [`kernel`]: the Linux ABI: processes, threads, memory, files, signals, syscalls.
//! - [`loader`]: ELF loading and the initial stack.
//! - [`vm`]: the vCPU backend trait, its implementations and guest memory.
//! - [`host`]: every host-OS call, with the per-OS parts in `host::linux`/`host::macos`.
//! - [`trace`]: `--trace` output.
//! - [`gdb`]: the debugger stub (`--gdb`).

pub mod cli;
pub mod gdb;
pub mod host;
pub mod kernel;
pub mod launcher;
pub mod loader;
pub mod trace;
pub mod vm;
