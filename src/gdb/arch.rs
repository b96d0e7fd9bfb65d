//! The aarch64 register set as the GDB remote protocol carries it: the `g` packet layout, the
//! target description (`target.xml`) gdb and lldb read it from, and the per-register answers
//! to lldb's `qRegisterInfo`.
//!
//! Register numbers follow gdb's aarch64 features: `x0`..`x30` are 0..30, `sp` 31, `pc` 32,
//! `cpsr` 33, `v0`..`v31` 34..65, `fpsr` 66 and `fpcr` 67; the identifiers are
//! `gdbstub_arch`'s. Only the EL0-visible registers are described (no system registers).

use gdbstub::arch::lldb::{Encoding, Format, Generic, Register, RegisterInfo};
use gdbstub::arch::{Arch, Registers};
use gdbstub_arch::aarch64::reg::id::AArch64RegId;

use crate::vm::CpuSnapshot;

/// The aarch64 user-mode architecture elfuse describes to debuggers.
pub enum ElfuseAarch64 {}

impl Arch for ElfuseAarch64 {
    type Usize = u64;
    type Registers = GdbRegisters;
    type RegId = AArch64RegId;
    type BreakpointKind = usize;

    fn target_description_xml() -> Option<&'static str> {
        Some(TARGET_XML)
    }

    fn lldb_register_info(reg_id: usize) -> Option<RegisterInfo<'static>> {
        Some(match lldb_register(reg_id) {
            Some(register) => RegisterInfo::Register(register),
            None => RegisterInfo::Done,
        })
    }
}

/// Every register of the `g` packet, in its order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GdbRegisters {
    /// `x0`..`x30`.
    pub x: [u64; 31],
    /// The stack pointer.
    pub sp: u64,
    /// The program counter.
    pub pc: u64,
    /// `PSTATE` as gdb's 32-bit `cpsr`.
    pub cpsr: u32,
    /// `v0`..`v31`.
    pub v: [u128; 32],
    /// `FPSR`.
    pub fpsr: u32,
    /// `FPCR`.
    pub fpcr: u32,
}

/// Size of the `g` packet's data in bytes.
const G_SIZE: usize = 33 * 8 + 4 + 32 * 16 + 4 + 4;

impl GdbRegisters {
    /// The registers of a stopped thread.
    pub fn from_snapshot(regs: &CpuSnapshot) -> GdbRegisters {
        GdbRegisters {
            x: regs.x,
            sp: regs.sp,
            pc: regs.pc,
            cpsr: regs.pstate as u32,
            v: regs.fp.v,
            fpsr: regs.fp.fpsr,
            fpcr: regs.fp.fpcr,
        }
    }

    /// Writes these registers into `regs` (the thread pointer is not among them).
    pub fn store(&self, regs: &mut CpuSnapshot) {
        regs.x = self.x;
        regs.sp = self.sp;
        regs.pc = self.pc;
        regs.pstate = u64::from(self.cpsr);
        regs.fp.v = self.v;
        regs.fp.fpsr = self.fpsr;
        regs.fp.fpcr = self.fpcr;
    }

    /// The little-endian bytes of the `g` packet.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(G_SIZE);
        for x in &self.x {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.sp.to_le_bytes());
        out.extend_from_slice(&self.pc.to_le_bytes());
        out.extend_from_slice(&self.cpsr.to_le_bytes());
        for v in &self.v {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.fpsr.to_le_bytes());
        out.extend_from_slice(&self.fpcr.to_le_bytes());
        out
    }
}

impl Registers for GdbRegisters {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.pc
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        for byte in self.to_bytes() {
            write_byte(Some(byte));
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        if bytes.len() < G_SIZE {
            return Err(());
        }
        let mut at = 0;
        let mut take = |len: usize| {
            let mut raw = [0u8; 16];
            raw[..len].copy_from_slice(&bytes[at..at + len]);
            at += len;
            u128::from_le_bytes(raw)
        };
        for x in &mut self.x {
            *x = take(8) as u64;
        }
        self.sp = take(8) as u64;
        self.pc = take(8) as u64;
        self.cpsr = take(4) as u32;
        for v in &mut self.v {
            *v = take(16);
        }
        self.fpsr = take(4) as u32;
        self.fpcr = take(4) as u32;
        Ok(())
    }
}

/// Reads register `id` into `buf`; returns its size, or `None` for a register not described.
pub fn read_register(regs: &GdbRegisters, id: AArch64RegId, buf: &mut [u8]) -> Option<usize> {
    let bytes: Vec<u8> = match id {
        AArch64RegId::X(n) if n < 31 => regs.x[usize::from(n)].to_le_bytes().to_vec(),
        AArch64RegId::Sp => regs.sp.to_le_bytes().to_vec(),
        AArch64RegId::Pc => regs.pc.to_le_bytes().to_vec(),
        AArch64RegId::Pstate => regs.cpsr.to_le_bytes().to_vec(),
        AArch64RegId::V(n) if n < 32 => regs.v[usize::from(n)].to_le_bytes().to_vec(),
        id if id == AArch64RegId::FPSR => regs.fpsr.to_le_bytes().to_vec(),
        id if id == AArch64RegId::FPCR => regs.fpcr.to_le_bytes().to_vec(),
        _ => return None,
    };
    let len = bytes.len().min(buf.len());
    buf[..len].copy_from_slice(&bytes[..len]);
    Some(len)
}

/// Writes register `id` from little-endian `value`; false for a register not described or a
/// value of the wrong size.
pub fn write_register(regs: &mut GdbRegisters, id: AArch64RegId, value: &[u8]) -> bool {
    let mut raw = [0u8; 16];
    let len = match id {
        AArch64RegId::V(_) => 16,
        AArch64RegId::Pstate => 4,
        id if id == AArch64RegId::FPSR || id == AArch64RegId::FPCR => 4,
        _ => 8,
    };
    if value.len() != len {
        return false;
    }
    raw[..len].copy_from_slice(value);
    let wide = u128::from_le_bytes(raw);
    match id {
        AArch64RegId::X(n) if n < 31 => regs.x[usize::from(n)] = wide as u64,
        AArch64RegId::Sp => regs.sp = wide as u64,
        AArch64RegId::Pc => regs.pc = wide as u64,
        AArch64RegId::Pstate => regs.cpsr = wide as u32,
        AArch64RegId::V(n) if n < 32 => regs.v[usize::from(n)] = wide,
        id if id == AArch64RegId::FPSR => regs.fpsr = wide as u32,
        id if id == AArch64RegId::FPCR => regs.fpcr = wide as u32,
        _ => return false,
    }
    true
}

/// Register `reg_id` described for lldb, or `None` past the last one.
fn lldb_register(reg_id: usize) -> Option<Register<'static>> {
    const X_NAMES: [&str; 31] = [
        "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
        "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26",
        "x27", "x28", "x29", "x30",
    ];
    const V_NAMES: [&str; 32] = [
        "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13",
        "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26",
        "v27", "v28", "v29", "v30", "v31",
    ];
    let general = |name, alt_name, offset, dwarf, generic| Register {
        name,
        alt_name,
        bitsize: 64,
        offset,
        encoding: Encoding::Uint,
        format: Format::Hex,
        set: "General Purpose Registers",
        gcc: Some(dwarf),
        dwarf: Some(dwarf),
        generic,
        container_regs: None,
        invalidate_regs: None,
    };
    let fp_offset = 33 * 8 + 4;
    Some(match reg_id {
        0..=28 => {
            let generic = match reg_id {
                0 => Some(Generic::Arg1),
                1 => Some(Generic::Arg2),
                2 => Some(Generic::Arg3),
                3 => Some(Generic::Arg4),
                4 => Some(Generic::Arg5),
                5 => Some(Generic::Arg6),
                6 => Some(Generic::Arg7),
                7 => Some(Generic::Arg8),
                _ => None,
            };
            general(X_NAMES[reg_id], None, reg_id * 8, reg_id, generic)
        }
        29 => general("x29", Some("fp"), 29 * 8, 29, Some(Generic::Fp)),
        30 => general("x30", Some("lr"), 30 * 8, 30, Some(Generic::Ra)),
        31 => general("sp", None, 31 * 8, 31, Some(Generic::Sp)),
        32 => general("pc", None, 32 * 8, 32, Some(Generic::Pc)),
        33 => Register {
            bitsize: 32,
            ..general("cpsr", None, 33 * 8, 33, Some(Generic::Flags))
        },
        34..=65 => {
            let n = reg_id - 34;
            Register {
                name: V_NAMES[n],
                alt_name: None,
                bitsize: 128,
                offset: fp_offset + 16 * n,
                encoding: Encoding::Vector,
                format: Format::VectorUInt8,
                set: "Floating Point Registers",
                gcc: Some(64 + n),
                dwarf: Some(64 + n),
                generic: None,
                container_regs: None,
                invalidate_regs: None,
            }
        }
        66 | 67 => Register {
            name: if reg_id == 66 { "fpsr" } else { "fpcr" },
            alt_name: None,
            bitsize: 32,
            offset: fp_offset + 16 * 32 + 4 * (reg_id - 66),
            encoding: Encoding::Uint,
            format: Format::Hex,
            set: "Floating Point Registers",
            gcc: None,
            dwarf: None,
            generic: None,
            container_regs: None,
            invalidate_regs: None,
        },
        _ => return None,
    })
}

/// The target description: gdb's two standard aarch64 features, with lldb's `generic` and
/// `dwarf_regnum` attributes (gdb ignores them).
const TARGET_XML: &str = concat!(
    r#"<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">"#,
    r#"<target version="1.0"><architecture>aarch64</architecture><osabi>GNU/Linux</osabi>"#,
    r#"<feature name="org.gnu.gdb.aarch64.core">"#,
    r#"<reg name="x0" bitsize="64" type="int" regnum="0" dwarf_regnum="0" generic="arg1"/>"#,
    r#"<reg name="x1" bitsize="64" type="int" dwarf_regnum="1" generic="arg2"/>"#,
    r#"<reg name="x2" bitsize="64" type="int" dwarf_regnum="2" generic="arg3"/>"#,
    r#"<reg name="x3" bitsize="64" type="int" dwarf_regnum="3" generic="arg4"/>"#,
    r#"<reg name="x4" bitsize="64" type="int" dwarf_regnum="4" generic="arg5"/>"#,
    r#"<reg name="x5" bitsize="64" type="int" dwarf_regnum="5" generic="arg6"/>"#,
    r#"<reg name="x6" bitsize="64" type="int" dwarf_regnum="6" generic="arg7"/>"#,
    r#"<reg name="x7" bitsize="64" type="int" dwarf_regnum="7" generic="arg8"/>"#,
    r#"<reg name="x8" bitsize="64" type="int" dwarf_regnum="8"/>"#,
    r#"<reg name="x9" bitsize="64" type="int" dwarf_regnum="9"/>"#,
    r#"<reg name="x10" bitsize="64" type="int" dwarf_regnum="10"/>"#,
    r#"<reg name="x11" bitsize="64" type="int" dwarf_regnum="11"/>"#,
    r#"<reg name="x12" bitsize="64" type="int" dwarf_regnum="12"/>"#,
    r#"<reg name="x13" bitsize="64" type="int" dwarf_regnum="13"/>"#,
    r#"<reg name="x14" bitsize="64" type="int" dwarf_regnum="14"/>"#,
    r#"<reg name="x15" bitsize="64" type="int" dwarf_regnum="15"/>"#,
    r#"<reg name="x16" bitsize="64" type="int" dwarf_regnum="16"/>"#,
    r#"<reg name="x17" bitsize="64" type="int" dwarf_regnum="17"/>"#,
    r#"<reg name="x18" bitsize="64" type="int" dwarf_regnum="18"/>"#,
    r#"<reg name="x19" bitsize="64" type="int" dwarf_regnum="19"/>"#,
    r#"<reg name="x20" bitsize="64" type="int" dwarf_regnum="20"/>"#,
    r#"<reg name="x21" bitsize="64" type="int" dwarf_regnum="21"/>"#,
    r#"<reg name="x22" bitsize="64" type="int" dwarf_regnum="22"/>"#,
    r#"<reg name="x23" bitsize="64" type="int" dwarf_regnum="23"/>"#,
    r#"<reg name="x24" bitsize="64" type="int" dwarf_regnum="24"/>"#,
    r#"<reg name="x25" bitsize="64" type="int" dwarf_regnum="25"/>"#,
    r#"<reg name="x26" bitsize="64" type="int" dwarf_regnum="26"/>"#,
    r#"<reg name="x27" bitsize="64" type="int" dwarf_regnum="27"/>"#,
    r#"<reg name="x28" bitsize="64" type="int" dwarf_regnum="28"/>"#,
    r#"<reg name="x29" bitsize="64" type="int" dwarf_regnum="29" generic="fp" altname="fp"/>"#,
    r#"<reg name="x30" bitsize="64" type="int" dwarf_regnum="30" generic="ra" altname="lr"/>"#,
    r#"<reg name="sp" bitsize="64" type="data_ptr" dwarf_regnum="31" generic="sp"/>"#,
    r#"<reg name="pc" bitsize="64" type="code_ptr" dwarf_regnum="32" generic="pc"/>"#,
    r#"<reg name="cpsr" bitsize="32" type="int" dwarf_regnum="33" generic="flags"/>"#,
    r#"</feature>"#,
    r#"<feature name="org.gnu.gdb.aarch64.fpu">"#,
    r#"<vector id="v2d" type="ieee_double" count="2"/>"#,
    r#"<vector id="v2u" type="uint64" count="2"/>"#,
    r#"<vector id="v4f" type="ieee_single" count="4"/>"#,
    r#"<vector id="v4u" type="uint32" count="4"/>"#,
    r#"<vector id="v8u" type="uint16" count="8"/>"#,
    r#"<vector id="v16u" type="uint8" count="16"/>"#,
    r#"<vector id="v1u" type="uint128" count="1"/>"#,
    r#"<union id="aarch64v">"#,
    r#"<field name="d" type="v2d"/><field name="s" type="v4f"/>"#,
    r#"<field name="ud" type="v2u"/><field name="us" type="v4u"/>"#,
    r#"<field name="h" type="v8u"/><field name="b" type="v16u"/><field name="q" type="v1u"/>"#,
    r#"</union>"#,
    r#"<reg name="v0" bitsize="128" type="aarch64v" regnum="34" dwarf_regnum="64"/>"#,
    r#"<reg name="v1" bitsize="128" type="aarch64v" dwarf_regnum="65"/>"#,
    r#"<reg name="v2" bitsize="128" type="aarch64v" dwarf_regnum="66"/>"#,
    r#"<reg name="v3" bitsize="128" type="aarch64v" dwarf_regnum="67"/>"#,
    r#"<reg name="v4" bitsize="128" type="aarch64v" dwarf_regnum="68"/>"#,
    r#"<reg name="v5" bitsize="128" type="aarch64v" dwarf_regnum="69"/>"#,
    r#"<reg name="v6" bitsize="128" type="aarch64v" dwarf_regnum="70"/>"#,
    r#"<reg name="v7" bitsize="128" type="aarch64v" dwarf_regnum="71"/>"#,
    r#"<reg name="v8" bitsize="128" type="aarch64v" dwarf_regnum="72"/>"#,
    r#"<reg name="v9" bitsize="128" type="aarch64v" dwarf_regnum="73"/>"#,
    r#"<reg name="v10" bitsize="128" type="aarch64v" dwarf_regnum="74"/>"#,
    r#"<reg name="v11" bitsize="128" type="aarch64v" dwarf_regnum="75"/>"#,
    r#"<reg name="v12" bitsize="128" type="aarch64v" dwarf_regnum="76"/>"#,
    r#"<reg name="v13" bitsize="128" type="aarch64v" dwarf_regnum="77"/>"#,
    r#"<reg name="v14" bitsize="128" type="aarch64v" dwarf_regnum="78"/>"#,
    r#"<reg name="v15" bitsize="128" type="aarch64v" dwarf_regnum="79"/>"#,
    r#"<reg name="v16" bitsize="128" type="aarch64v" dwarf_regnum="80"/>"#,
    r#"<reg name="v17" bitsize="128" type="aarch64v" dwarf_regnum="81"/>"#,
    r#"<reg name="v18" bitsize="128" type="aarch64v" dwarf_regnum="82"/>"#,
    r#"<reg name="v19" bitsize="128" type="aarch64v" dwarf_regnum="83"/>"#,
    r#"<reg name="v20" bitsize="128" type="aarch64v" dwarf_regnum="84"/>"#,
    r#"<reg name="v21" bitsize="128" type="aarch64v" dwarf_regnum="85"/>"#,
    r#"<reg name="v22" bitsize="128" type="aarch64v" dwarf_regnum="86"/>"#,
    r#"<reg name="v23" bitsize="128" type="aarch64v" dwarf_regnum="87"/>"#,
    r#"<reg name="v24" bitsize="128" type="aarch64v" dwarf_regnum="88"/>"#,
    r#"<reg name="v25" bitsize="128" type="aarch64v" dwarf_regnum="89"/>"#,
    r#"<reg name="v26" bitsize="128" type="aarch64v" dwarf_regnum="90"/>"#,
    r#"<reg name="v27" bitsize="128" type="aarch64v" dwarf_regnum="91"/>"#,
    r#"<reg name="v28" bitsize="128" type="aarch64v" dwarf_regnum="92"/>"#,
    r#"<reg name="v29" bitsize="128" type="aarch64v" dwarf_regnum="93"/>"#,
    r#"<reg name="v30" bitsize="128" type="aarch64v" dwarf_regnum="94"/>"#,
    r#"<reg name="v31" bitsize="128" type="aarch64v" dwarf_regnum="95"/>"#,
    r#"<reg name="fpsr" bitsize="32" type="int"/>"#,
    r#"<reg name="fpcr" bitsize="32" type="int"/>"#,
    r#"</feature></target>"#,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_g_packet_round_trips_in_gdbs_register_order() {
        let mut regs = GdbRegisters::default();
        for (n, x) in regs.x.iter_mut().enumerate() {
            *x = n as u64 + 1;
        }
        regs.sp = 0x7fff_0000;
        regs.pc = 0x40_0000;
        regs.cpsr = 0x6000_0000;
        regs.v[31] = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10;
        regs.fpsr = 0x10;
        regs.fpcr = 0x0300_0000;

        let mut bytes = Vec::new();
        regs.gdb_serialize(|b| bytes.push(b.unwrap()));
        assert_eq!(bytes.len(), G_SIZE);
        assert_eq!(bytes[31 * 8..32 * 8], 0x7fff_0000u64.to_le_bytes());
        assert_eq!(bytes[33 * 8..33 * 8 + 4], 0x6000_0000u32.to_le_bytes());
        let fpsr_at = 33 * 8 + 4 + 32 * 16;
        assert_eq!(bytes[fpsr_at..fpsr_at + 4], 0x10u32.to_le_bytes());

        let mut back = GdbRegisters::default();
        back.gdb_deserialize(&bytes).unwrap();
        assert_eq!(back, regs);
    }

    #[test]
    fn single_registers_use_gdbs_numbers() {
        let mut regs = GdbRegisters::default();
        let (fpsr, _) = <AArch64RegId as gdbstub::arch::RegId>::from_raw_id(66).unwrap();
        assert!(write_register(&mut regs, fpsr, &7u32.to_le_bytes()));
        assert_eq!(regs.fpsr, 7);
        let (pc, _) = <AArch64RegId as gdbstub::arch::RegId>::from_raw_id(32).unwrap();
        assert!(write_register(&mut regs, pc, &0x1234u64.to_le_bytes()));
        let mut buf = [0u8; 16];
        assert_eq!(read_register(&regs, pc, &mut buf), Some(8));
        assert_eq!(buf[..8], 0x1234u64.to_le_bytes());
    }

    #[test]
    fn lldb_learns_the_generic_registers() {
        let pc = lldb_register(32).unwrap();
        assert_eq!(pc.name, "pc");
        assert!(matches!(pc.generic, Some(Generic::Pc)));
        let fp = lldb_register(29).unwrap();
        assert!(matches!(fp.generic, Some(Generic::Fp)));
        assert_eq!(lldb_register(67).unwrap().offset, G_SIZE - 4);
        assert!(lldb_register(68).is_none());
    }
}
