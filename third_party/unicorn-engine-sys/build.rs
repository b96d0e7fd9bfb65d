//! Builds unicorn 2.1.5 for elfuse: fetch the pinned upstream crate, verify it, apply the
//! fixes listed in `FIXES`, compile the aarch64 emulator with CMake and generate bindings with
//! the same item names as the crates.io `unicorn-engine-sys`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use bindgen::callbacks::{EnumVariantValue, ParseCallbacks};
use sha2::{Digest, Sha256};

const NAME: &str = "unicorn-engine-sys";
const VERSION: &str = "2.1.5";

/// SHA-256 of `unicorn-engine-sys-2.1.5.crate` on crates.io (the checksum Cargo.lock records).
const CRATE_SHA256: &str = "685282714d35a6fbfed0ae14d81bb11c91838bc7a165cac778321679a7bb91d8";

/// One source edit: in `file`, `find` must occur exactly `count` times; each becomes `replace`.
struct Fix {
    file: &'static str,
    find: &'static str,
    replace: &'static str,
    count: usize,
}

/// The fixes elfuse needs; README.md explains each.
const FIXES: &[Fix] = &[
    // No stop check after every guest load and store: an asynchronous `uc_emu_stop` must take
    // effect at the next translation-block boundary, where no instruction is half done.
    Fix {
        file: "qemu/tcg/tcg-op.c",
        find: "check_exit_request(tcg_ctx);",
        replace: "/* elfuse: stop requests are honoured at block boundaries only */",
        count: 6,
    },
    // A store that faults leaves the translation block at once, with the PC of the store,
    // exactly as a faulting load already does.
    Fix {
        file: "qemu/accel/tcg/cputlb.c",
        find: "            cpu_exit(uc->cpu);\n            return;\n",
        replace: "            cpu_exit(uc->cpu);\n            \
                  if (uc->nested_level > 0 && !uc->cpu->stopped) {\n                \
                  cpu_loop_exit_restore(uc->cpu, retaddr);\n            }\n            return;\n",
        count: 3,
    },
    Fix {
        file: "qemu/accel/tcg/cputlb.c",
        find: "                cpu_exit(uc->cpu);\n                return;\n",
        replace: "                cpu_exit(uc->cpu);\n                \
                  if (uc->nested_level > 0 && !uc->cpu->stopped) {\n                    \
                  cpu_loop_exit_restore(uc->cpu, retaddr);\n                }\n                \
                  return;\n",
        count: 1,
    },
    // A PC written through the API is honoured once, by the exit it forces, not at some later
    // stop. Upstream clears the flag that keeps an exit from restoring the PC only when a
    // block-start stop check consumes it; when the forced exit left another way (the write was
    // made in an interrupt hook) the flag survived, and the next asynchronous stop left the
    // stale written PC in place of the real one.
    Fix {
        file: "qemu/softmmu/cpus.c",
        find: "            uc->quit_request = false;\n",
        replace: "            uc->quit_request = false;\n            uc->skip_sync_pc_on_exit = false;\n",
        count: 1,
    },
    // A written page that is not executable leaves the slow store path after its first write.
    // Upstream keeps every page the CPU may fetch from on the slow path, and with the guest
    // MMU off that is every page; only executable pages can hold translated code that a store
    // must invalidate, and a change of protection flushes the TLB.
    Fix {
        file: "qemu/accel/tcg/cputlb.c",
        find: "            !(tlbe->addr_code != -1) &&\n",
        replace: "            (tlbe->addr_code == -1 || !(mr->perms & UC_PROT_EXEC)) &&\n",
        count: 1,
    },
    // Fault hooks do not keep written pages on the slow path: they run only when an access
    // fails, which never reaches the dirty-page bookkeeping, and changing a page's protection
    // flushes the TLB. Without this every guest store takes the slow path for as long as any
    // fault hook exists, which for elfuse is always.
    Fix {
        file: "qemu/include/exec/exec-all.h",
        find: "    if (HOOK_EXISTS_BOUNDED(uc, UC_HOOK_MEM_FETCH_UNMAPPED, paddr))\n        return true;\n",
        replace: "",
        count: 1,
    },
    Fix {
        file: "qemu/include/exec/exec-all.h",
        find: "    if (HOOK_EXISTS_BOUNDED(uc, UC_HOOK_MEM_READ_UNMAPPED, paddr))\n        return true;\n",
        replace: "",
        count: 1,
    },
    Fix {
        file: "qemu/include/exec/exec-all.h",
        find: "    if (HOOK_EXISTS_BOUNDED(uc, UC_HOOK_MEM_READ_PROT, paddr))\n        return true;\n",
        replace: "",
        count: 1,
    },
    Fix {
        file: "qemu/include/exec/exec-all.h",
        find: "    if (HOOK_EXISTS_BOUNDED(uc, UC_HOOK_MEM_FETCH_PROT, paddr))\n        return true;\n",
        replace: "",
        count: 1,
    },
    Fix {
        file: "qemu/include/exec/exec-all.h",
        find: "    if (HOOK_EXISTS_BOUNDED(uc, UC_HOOK_MEM_WRITE_UNMAPPED, paddr))\n        return true;\n",
        replace: "",
        count: 1,
    },
    Fix {
        file: "qemu/include/exec/exec-all.h",
        find: "    if (HOOK_EXISTS_BOUNDED(uc, UC_HOOK_MEM_WRITE_PROT, paddr))\n        return true;\n",
        replace: "",
        count: 1,
    },
    // After translating a block, the pages it came from go back on the slow store path by
    // looking only at their own slots of the direct-mapped TLB (and the victim TLB) instead
    // of scanning every entry of every MMU mode, which upstream does for each new block.
    Fix {
        file: "qemu/accel/tcg/cputlb.c",
        find: "        unsigned int n = tlb_n_entries(&env_tlb(env)->f[mmu_idx]);\n\n        \
               for (i = 0; i < n; i++) {\n            \
               tlb_reset_dirty_range_by_vaddr_locked(uc, &env_tlb(env)->f[mmu_idx].table[i],\n",
        replace: "        target_ulong page;\n\n        \
                  for (page = start1 & TARGET_PAGE_MASK; page < start1 + length;\n             \
                  page += TARGET_PAGE_SIZE) {\n            \
                  tlb_reset_dirty_range_by_vaddr_locked(uc, tlb_entry(env, mmu_idx, page),\n",
        count: 1,
    },
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ELFUSE_UNICORN_CRATE");

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = unpack(&out);

    for fix in FIXES {
        apply(&source, fix);
    }

    build(&source);
    generate_bindings(&source, &out);
}

/// Finds or downloads the upstream `.crate`, checks its digest and unpacks it into `out`.
fn unpack(out: &Path) -> PathBuf {
    let file_name = format!("{NAME}-{VERSION}.crate");
    let archive = match env::var_os("ELFUSE_UNICORN_CRATE") {
        Some(path) => PathBuf::from(path),
        None => cached_crate(&file_name).unwrap_or_else(|| download(out, &file_name)),
    };

    let bytes =
        fs::read(&archive).unwrap_or_else(|err| panic!("cannot read {}: {err}", archive.display()));
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest,
        CRATE_SHA256,
        "{} does not match the pinned {NAME} {VERSION}",
        archive.display()
    );

    let source = out.join(format!("{NAME}-{VERSION}"));
    if source.exists() {
        fs::remove_dir_all(&source).expect("cannot clear the previous unicorn source");
    }
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(out));
    source
}

/// The copy Cargo may already hold from an earlier build against crates.io.
fn cached_crate(file_name: &str) -> Option<PathBuf> {
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    let registries = fs::read_dir(cargo_home.join("registry/cache")).ok()?;
    registries
        .filter_map(Result::ok)
        .map(|registry| registry.path().join(file_name))
        .find(|path| path.is_file())
}

fn download(out: &Path, file_name: &str) -> PathBuf {
    let url = format!("https://static.crates.io/crates/{NAME}/{file_name}");
    let path = out.join(file_name);
    run(Command::new("curl")
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--retry",
            "3",
        ])
        .arg("--output")
        .arg(&path)
        .arg(&url));
    path
}

fn apply(source: &Path, fix: &Fix) {
    let path = source.join(fix.file);
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let found = text.matches(fix.find).count();
    assert_eq!(
        found, fix.count,
        "{}: expected {} occurrence(s) of {:?}, found {found}",
        fix.file, fix.count, fix.find
    );
    fs::write(&path, text.replace(fix.find, fix.replace))
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
}

fn build(source: &Path) {
    let mut config = cmake::Config::new(source);
    if Command::new("ninja")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
    {
        config.generator("Ninja");
    }

    let dst = config
        .profile("Release")
        .define("UNICORN_ARCH", "aarch64")
        .define("UNICORN_BUILD_TESTS", "OFF")
        .define("UNICORN_INSTALL", "ON")
        .define("BUILD_SHARED_LIBS", "OFF")
        .define("UNICORN_LEGACY_STATIC_ARCHIVE", "ON")
        .build();

    println!(
        "cargo:rustc-link-search=native={}",
        dst.join("lib").display()
    );
    println!(
        "cargo:rustc-link-search=native={}",
        dst.join("lib64").display()
    );
    println!("cargo:rustc-link-lib=static=unicorn");
    println!("cargo:rustc-link-lib=pthread");
    println!("cargo:rustc-link-lib=m");
}

/// Writes `unicorn_sys.rs`: the bindgen output followed by the upstream crate's helper impls.
fn generate_bindings(source: &Path, out: &Path) {
    let bitflag_enums = [
        "uc_hook_type",
        "uc_tcg_op_flag",
        "uc_prot",
        "uc_mode",
        "uc_context_content",
        "uc_control_type",
    ];
    let bindings = bindgen::Builder::default()
        .header(source.join("include/unicorn/unicorn.h").to_string_lossy())
        .layout_tests(false)
        .allowlist_type("^uc.*")
        .allowlist_function("^uc_.*")
        .allowlist_var("^uc.*")
        .rustified_enum("^uc.*")
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(UpstreamNames))
        .bitfield_enum(bitflag_enums.join("|"))
        .derive_ord(true)
        .derive_eq(true)
        .use_core()
        .generate()
        .expect("bindgen failed on unicorn.h");

    let upstream_lib = source.join("bindings/rust/sys/src/lib.rs");
    let lib = fs::read_to_string(&upstream_lib)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", upstream_lib.display()));
    let header = "#![allow(non_camel_case_types)]\n\nmod bindings;\npub use bindings::*;\n";
    let impls = lib.strip_prefix(header).unwrap_or_else(|| {
        panic!(
            "{} no longer starts with the expected module header",
            upstream_lib.display()
        )
    });

    let generated = format!("{}\n{impls}", bindings.to_string());
    fs::write(out.join("unicorn_sys.rs"), generated).expect("cannot write unicorn_sys.rs");
}

fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("cannot run {:?}: {err}", command.get_program()));
    assert!(status.success(), "{command:?} failed: {status}");
}

/// Gives the C items the Rust names the crates.io crate uses (`uc_arm64_reg` becomes
/// `RegisterARM64`, `UC_ARCH_ARM64` becomes `Arch::ARM64`, ...), so `unicorn-engine`
/// compiles against these bindings unchanged.
#[derive(Debug)]
struct UpstreamNames;

impl ParseCallbacks for UpstreamNames {
    fn item_name(&self, name: &str) -> Option<String> {
        let fixed = match name {
            "uc_err" => "uc_error",
            "uc_query_type" => "Query",
            "uc_tlb_type" => "TlbType",
            "uc_mem_type" => "MemType",
            "uc_tb" => "TranslationBlock",
            "uc_arch" => "Arch",
            "uc_mode" => "Mode",
            "uc_mem_region" => "MemRegion",
            "uc_prot" => "Prot",
            "uc_hook_type" => "HookType",
            "uc_tlb_entry" => "TlbEntry",
            "uc_control_type" => "ControlType",
            "uc_context_content" => "ContextMode",
            "uc_tcg_op_code" => "TcgOpCode",
            "uc_tcg_op_flag" => "TcgOpFlag",
            _ => "",
        };
        if !fixed.is_empty() {
            return Some(fixed.to_owned());
        }

        if name.contains("_cpu_") {
            return name
                .strip_prefix("uc_cpu_")
                .map(|arch| format!("{}CpuModel", camel(arch)));
        }
        if let Some(arch) = name
            .strip_prefix("uc_")
            .and_then(|rest| rest.strip_suffix("_reg"))
        {
            return Some(format!("Register{}", arch.replace('_', "").to_uppercase()));
        }
        if let Some(arch) = name
            .strip_prefix("uc_")
            .and_then(|rest| rest.strip_suffix("_insn"))
        {
            return Some(format!("{}Insn", camel(arch)));
        }
        if name.contains("_mode_") {
            return name
                .strip_prefix("uc_mode_")
                .map(|mode| format!("{}Mode", camel(mode)));
        }
        None
    }

    fn enum_variant_name(
        &self,
        enum_name: Option<&str>,
        variant: &str,
        _value: EnumVariantValue,
    ) -> Option<String> {
        let enum_name = enum_name?;
        let kind = enum_name.strip_prefix("enum uc_")?;
        let prefix = match kind {
            "query_type" => "UC_QUERY".to_owned(),
            "tlb_type" => "UC_TLB".to_owned(),
            "control_type" => "UC_CTL".to_owned(),
            "context_content" => "UC_CTL_CONTEXT".to_owned(),
            "err" => "UC_ERR".to_owned(),
            "mem_type" | "mem_region" => "UC_MEM".to_owned(),
            "arch" => "UC_ARCH".to_owned(),
            "mode" => "UC_MODE".to_owned(),
            "prot" => "UC_PROT".to_owned(),
            "hook_type" => "UC_HOOK".to_owned(),
            "x86_insn" => "UC_X86_INS".to_owned(),
            "tcg_op_code" => "UC_TCG_OP".to_owned(),
            "tcg_op_flag" => "UC_TCG_OP_FLAG".to_owned(),
            other => format!("UC_{}", other.to_uppercase()),
        };
        let short = variant
            .strip_prefix(&prefix)?
            .strip_prefix('_')?
            .to_uppercase();

        let numeric = short.parse::<u32>().is_ok();
        let starts_with_digit = short.starts_with(|c: char| c.is_ascii_digit());
        Some(match kind {
            "ppc_reg" | "mips_reg" if numeric => format!("R{short}"),
            "mode" if matches!(short.as_str(), "16" | "32" | "64") => format!("MODE_{short}"),
            _ if kind.contains("cpu") && starts_with_digit => format!("Model_{short}"),
            _ => short,
        })
    }
}

/// `arm64` → `Arm64`, `x86_64` → `X8664`: each `_`-separated word capitalised, then joined.
fn camel(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first
                    .to_uppercase()
                    .chain(chars.flat_map(char::to_lowercase))
                    .collect()
            })
        })
        .collect()
}
