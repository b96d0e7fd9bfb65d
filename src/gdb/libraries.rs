//! The shared-library list (`qXfer:libraries-svr4:read`): the dynamic linker's `link_map`
//! chain, read from guest memory the way a debugger on Linux would find it: the program
//! headers from `AT_PHDR`, its `PT_DYNAMIC` section, the `DT_DEBUG` entry the dynamic linker
//! fills with its `r_debug`, and `r_debug.r_map`.
//!
//! Names are the guest's paths (`/lib/aarch64-linux-gnu/libc.so.6`), as the guest's dynamic
//! linker wrote them; a debugger finds the files through its sysroot setting.

use std::fmt::Write;

use crate::kernel::abi::auxv::{AT_PHDR, AT_PHNUM};
use crate::kernel::process::{Process, lock};
use crate::vm::memory::GuestMemory;

const PT_DYNAMIC: u32 = 2;
const PT_PHDR: u32 = 6;
const DT_NULL: u64 = 0;
const DT_DEBUG: u64 = 21;
/// `sizeof(Elf64_Phdr)`.
const PHDR_SIZE: u64 = 56;
/// Bounds on what is walked, against a corrupt or hostile guest.
const MAX_DYNAMIC: u64 = 4096;
const MAX_LIBRARIES: usize = 4096;
const MAX_NAME: usize = 4096;

/// The `<library-list-svr4>` document for `process` (empty before the dynamic linker has
/// filled in `r_debug`, and for static programs).
pub fn svr4_xml(process: &Process) -> String {
    let memory = process.memory();
    let auxv = lock(&process.exec).auxv.clone();
    let value = |key: u64| auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let entries = match (value(AT_PHDR), value(AT_PHNUM)) {
        (Some(phdr), Some(phnum)) => link_map(&memory, phdr, phnum),
        _ => Vec::new(),
    };

    let mut xml = String::from(r#"<library-list-svr4 version="1.0""#);
    let Some((main, _)) = entries.first() else {
        xml.push_str("/>");
        return xml;
    };
    let _ = write!(xml, r#" main-lm="{:#x}">"#, main.lm);
    for (entry, name) in entries.iter().skip(1) {
        if name.is_empty() {
            continue;
        }
        let _ = write!(
            xml,
            r#"<library name="{}" lm="{:#x}" l_addr="{:#x}" l_ld="{:#x}" lmid="0x0"/>"#,
            escape(name),
            entry.lm,
            entry.l_addr,
            entry.l_ld
        );
    }
    xml.push_str("</library-list-svr4>");
    xml
}

/// One `struct link_map`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LinkMap {
    lm: u64,
    l_addr: u64,
    l_ld: u64,
}

/// The `link_map` chain, with each entry's name; empty if it cannot be found.
fn link_map(memory: &GuestMemory, phdr: u64, phnum: u64) -> Vec<(LinkMap, String)> {
    let Some(r_debug) = r_debug(memory, phdr, phnum) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    let mut lm = memory.read_val::<u64>(r_debug + 8).unwrap_or(0);
    while lm != 0 && entries.len() < MAX_LIBRARIES {
        let Ok(fields) = memory.read_val::<[u64; 4]>(lm) else {
            break;
        };
        let [l_addr, l_name, l_ld, l_next] = fields;
        let name = match memory.read_cstr(l_name, MAX_NAME) {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        };
        entries.push((LinkMap { lm, l_addr, l_ld }, name));
        lm = l_next;
    }
    entries
}

/// The address of the dynamic linker's `r_debug`, from the program's `DT_DEBUG`.
fn r_debug(memory: &GuestMemory, phdr: u64, phnum: u64) -> Option<u64> {
    let mut bias = None;
    let mut dynamic = None;
    for n in 0..phnum.min(256) {
        let at = phdr + n * PHDR_SIZE;
        let p_type = memory.read_val::<u32>(at).ok()?;
        let p_vaddr = memory.read_val::<u64>(at + 16).ok()?;
        match p_type {
            PT_PHDR => bias = Some(phdr.wrapping_sub(p_vaddr)),
            PT_DYNAMIC => dynamic = Some(p_vaddr),
            _ => {}
        }
    }
    let dynamic = dynamic?.wrapping_add(bias.unwrap_or(0));
    for n in 0..MAX_DYNAMIC {
        let [tag, value] = memory.read_val::<[u64; 2]>(dynamic + n * 16).ok()?;
        match tag {
            DT_NULL => return None,
            DT_DEBUG if value != 0 => return Some(value),
            _ => {}
        }
    }
    None
}

/// `text` as an XML attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::vma::{Prot, Vma};

    /// A program at 0x10000 whose `DT_DEBUG` points at an `r_debug` with two `link_map`s.
    #[test]
    fn the_chain_is_read_from_dt_debug() {
        let memory = GuestMemory::new(1 << 24).unwrap();
        memory.map(Vma::anonymous(0x10000..0x14000, Prot::READ | Prot::WRITE));
        let base = 0x10000u64;
        // Program headers: PT_PHDR at vaddr 0x40 (so the bias is 0x10000), PT_DYNAMIC at 0x1000.
        memory.write_val(base + 0x40, &PT_PHDR).unwrap();
        memory.write_val(base + 0x40 + 16, &0x40u64).unwrap();
        memory.write_val(base + 0x40 + 56, &PT_DYNAMIC).unwrap();
        memory.write_val(base + 0x40 + 56 + 16, &0x1000u64).unwrap();
        // The dynamic section: DT_DEBUG -> r_debug at 0x12000, then DT_NULL.
        memory
            .write_val(base + 0x1000, &[DT_DEBUG, base + 0x2000])
            .unwrap();
        memory
            .write_val(base + 0x2000 + 8, &(base + 0x2100))
            .unwrap();
        // Main program's link_map (empty name), then libc's.
        memory
            .write_val(
                base + 0x2100,
                &[0u64, base + 0x2300, base + 0x1000, base + 0x2200],
            )
            .unwrap();
        memory
            .write_val(
                base + 0x2200,
                &[0x7f00_0000u64, base + 0x2310, 0x7f01_0000, 0],
            )
            .unwrap();
        memory.write(base + 0x2300, b"\0").unwrap();
        memory.write(base + 0x2310, b"/lib/libc.so.6\0").unwrap();

        let entries = link_map(&memory, base + 0x40, 2);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].1, "/lib/libc.so.6");
        assert_eq!(
            entries[1].0,
            LinkMap {
                lm: base + 0x2200,
                l_addr: 0x7f00_0000,
                l_ld: 0x7f01_0000
            }
        );
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }
}
