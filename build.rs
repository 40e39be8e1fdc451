//! Link-time settings for the `jit` binary only.
//!
//! On Linux with glibc, its ~29,000 relative relocations are packed (RELR:
//! glibc 2.36+, binutils 2.38+). The dynamic loader then applies them from a
//! small bitmap instead of a 700 KB table: `jit credential get`, which git
//! starts for every fetch and push, spends about a third less CPU starting.
//! Set `JIT_NO_RELR=1` to build with an older linker.

fn main() {
    println!("cargo:rerun-if-env-changed=JIT_NO_RELR");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && std::env::var_os("JIT_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
