//! Build script: decides which CPU backends this build contains.
//!
//! `elfuse_emu` is set wherever the unicorn emulator is linked (every host but Apple Silicon
//! macOS, and there with `--features emu`); `elfuse_hvf` on Apple Silicon macOS.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(elfuse_emu)");
    println!("cargo::rustc-check-cfg=cfg(elfuse_hvf)");

    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let apple_silicon = os == "macos" && arch == "aarch64";
    let emu_feature = std::env::var_os("CARGO_FEATURE_EMU").is_some();

    if !apple_silicon || emu_feature {
        println!("cargo::rustc-cfg=elfuse_emu");
    }
    if apple_silicon {
        println!("cargo::rustc-cfg=elfuse_hvf");
    }
}
