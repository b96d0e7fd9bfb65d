//! Raw bindings to the unicorn CPU emulator, API-compatible with crates.io's
//! `unicorn-engine-sys` 2.1.5.
//!
//! The build script fetches that crate's pinned source, applies the fixes described in this
//! crate's README, compiles the aarch64 emulator and generates these bindings; the helper impls
//! at the end of the generated file come from the upstream crate unchanged.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/unicorn_sys.rs"));
