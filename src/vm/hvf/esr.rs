//! Exception syndromes (`ESR_ELx`) decoded into what the runtime acts on.
//!
//! Two syndromes reach the host. `ESR_EL2` comes with every exception exit of
//! Hypervisor.framework: for the shim's `hvc` it carries the immediate that says why the shim
//! called ([`El2Exit`]). `ESR_EL1` (with `FAR_EL1`) describes the guest's own exception that
//! the shim reported; [`decode_el0`] turns it into a [`VcpuExit`], and the runtime's signal
//! path turns that into the signal Linux would send (`kernel::signal::fault_siginfo`).
//!
//! Field positions and values are the Arm ARM's (D17.2.37, `ESR_EL1`): `EC` in bits [31:26],
//! `IL` bit 25, `ISS` bits [24:0]; for aborts `DFSC`/`IFSC` bits [5:0], `WnR` bit 6, `CM` bit 8
//! and `FnV` bit 10.

use crate::vm::{Access, DebugStop, VcpuExit};

/// Exception classes (`ESR_ELx.EC`) the backend meets.
pub mod ec {
    /// Unknown reason: undefined instructions, including an EL0 `hvc`.
    pub const UNKNOWN: u8 = 0x00;
    /// `WFI` or `WFE` trapped.
    pub const WFX: u8 = 0x01;
    /// An `MSR`/`MRS`/system instruction trapped.
    pub const SYSREG: u8 = 0x18;
    /// Illegal execution state.
    pub const ILLEGAL_STATE: u8 = 0x0e;
    /// `svc` from AArch64.
    pub const SVC64: u8 = 0x15;
    /// `hvc` from AArch64.
    pub const HVC64: u8 = 0x16;
    /// Instruction abort from a lower exception level.
    pub const IABT_LOWER: u8 = 0x20;
    /// Instruction abort from the same exception level.
    pub const IABT_SAME: u8 = 0x21;
    /// PC alignment fault.
    pub const PC_ALIGN: u8 = 0x22;
    /// Data abort from a lower exception level.
    pub const DABT_LOWER: u8 = 0x24;
    /// Data abort from the same exception level.
    pub const DABT_SAME: u8 = 0x25;
    /// SP alignment fault.
    pub const SP_ALIGN: u8 = 0x26;
    /// Hardware breakpoint from a lower exception level.
    pub const BREAKPOINT_LOWER: u8 = 0x30;
    /// Software step from a lower exception level.
    pub const STEP_LOWER: u8 = 0x32;
    /// Watchpoint from a lower exception level.
    pub const WATCHPOINT_LOWER: u8 = 0x34;
    /// `brk` from AArch64.
    pub const BRK64: u8 = 0x3c;
}

/// An exception syndrome register value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esr(pub u64);

impl Esr {
    /// The exception class, bits [31:26].
    pub fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    /// The instruction-length bit (32-bit instruction), bit 25.
    pub fn il(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// The instruction-specific syndrome, bits [24:0].
    pub fn iss(self) -> u32 {
        (self.0 & 0x1ff_ffff) as u32
    }

    /// The 16-bit immediate of `svc`, `hvc` and `brk`, ISS bits [15:0].
    pub fn imm16(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

/// What a data or instruction fault status code (`DFSC`/`IFSC`) says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStatus {
    /// Address size fault at a lookup level (an address beyond the translated range).
    AddressSize(u8),
    /// Translation fault at a lookup level: nothing mapped.
    Translation(u8),
    /// Access flag fault at a lookup level.
    AccessFlag(u8),
    /// Permission fault at a lookup level.
    Permission(u8),
    /// Alignment fault.
    Alignment,
    /// Synchronous external abort (with or without a table walk).
    External,
    /// TLB conflict abort: overlapping TLB entries after a block was split or merged.
    TlbConflict,
    /// Any other code.
    Other(u8),
}

impl FaultStatus {
    /// Decodes the 6-bit fault status code.
    pub fn from_code(code: u8) -> FaultStatus {
        let level = code & 0b11;
        match code & 0x3f {
            0b00_0000..=0b00_0011 => FaultStatus::AddressSize(level),
            0b00_0100..=0b00_0111 => FaultStatus::Translation(level),
            0b00_1000..=0b00_1011 => FaultStatus::AccessFlag(level),
            0b00_1100..=0b00_1111 => FaultStatus::Permission(level),
            0b01_0000 | 0b01_0100..=0b01_0111 => FaultStatus::External,
            0b10_0001 => FaultStatus::Alignment,
            0b11_0000 => FaultStatus::TlbConflict,
            other => FaultStatus::Other(other),
        }
    }
}

/// The guest's exception state the shim reports, read from the vCPU's EL1 registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultContext {
    /// `ESR_EL1`.
    pub esr: Esr,
    /// `FAR_EL1`: the faulting address for aborts, watchpoints and PC alignment faults.
    pub far: u64,
    /// `SP_EL0` when the exception was taken, for SP alignment faults.
    pub sp: u64,
}

/// What an EL0 exception means for the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum El0Event {
    /// An exit the exit handler serves.
    Exit(VcpuExit),
    /// A TLB conflict abort: the host invalidates the whole TLB and resumes the instruction.
    TlbConflict,
    /// An exception the backend's set-up should have made impossible (a trapped FP access,
    /// an external abort): a backend failure, not the guest's.
    Unexpected {
        /// The exception class.
        ec: u8,
        /// The syndrome.
        iss: u32,
    },
}

/// Decodes an exception the guest took at EL0.
///
/// Follows Linux arm64: any `svc` immediate is a syscall; a store is a write unless it is a
/// cache-maintenance instruction (`CM`); a fault address the CPU marks invalid (`FnV`) is
/// reported as 0.
pub fn decode_el0(ctx: &FaultContext) -> El0Event {
    let esr = ctx.esr;
    let iss = esr.iss();
    let far = if iss & (1 << 10) != 0 { 0 } else { ctx.far };
    let exit = match esr.ec() {
        ec::SVC64 => VcpuExit::Syscall,
        ec::UNKNOWN | ec::HVC64 | ec::SYSREG | ec::ILLEGAL_STATE => VcpuExit::Undefined,
        ec::BRK64 => VcpuExit::Breakpoint,
        ec::PC_ALIGN => VcpuExit::Alignment {
            addr: Some(ctx.far),
        },
        ec::SP_ALIGN => VcpuExit::Alignment { addr: Some(ctx.sp) },
        ec::IABT_LOWER => return abort(iss, far, Access::Execute),
        ec::DABT_LOWER => {
            let write = iss & (1 << 6) != 0 && iss & (1 << 8) == 0;
            let access = if write { Access::Write } else { Access::Read };
            return abort(iss, far, access);
        }
        ec::BREAKPOINT_LOWER => VcpuExit::Debug(DebugStop::Breakpoint),
        ec::STEP_LOWER => VcpuExit::Debug(DebugStop::Step),
        ec::WATCHPOINT_LOWER => {
            let access = if iss & (1 << 6) != 0 {
                Access::Write
            } else {
                Access::Read
            };
            VcpuExit::Debug(DebugStop::Watchpoint { addr: far, access })
        }
        other => return El0Event::Unexpected { ec: other, iss },
    };
    El0Event::Exit(exit)
}

fn abort(iss: u32, far: u64, access: Access) -> El0Event {
    let unmapped = match FaultStatus::from_code((iss & 0x3f) as u8) {
        FaultStatus::Translation(_) | FaultStatus::AddressSize(_) => true,
        FaultStatus::Permission(_) | FaultStatus::AccessFlag(_) => false,
        FaultStatus::Alignment => {
            return El0Event::Exit(VcpuExit::Alignment { addr: Some(far) });
        }
        FaultStatus::TlbConflict => return El0Event::TlbConflict,
        FaultStatus::External | FaultStatus::Other(_) => {
            let ec = if access == Access::Execute {
                ec::IABT_LOWER
            } else {
                ec::DABT_LOWER
            };
            return El0Event::Unexpected { ec, iss };
        }
    };
    El0Event::Exit(VcpuExit::MemoryFault {
        addr: far,
        access,
        unmapped,
    })
}

/// Why the vCPU left the guest for the host, from `ESR_EL2` of an exception exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum El2Exit {
    /// The shim's `hvc #imm`.
    Hvc(u16),
    /// A trapped `WFI`/`WFE`: the guest waits; resume after the instruction.
    Wfx,
    /// Anything else (a stage-2 fault, a trapped system register): a backend failure.
    Other {
        /// The exception class.
        ec: u8,
        /// The syndrome.
        iss: u32,
    },
}

/// Decodes the syndrome of an exception exit to the host.
pub fn decode_el2(esr: Esr) -> El2Exit {
    match esr.ec() {
        ec::HVC64 => El2Exit::Hvc(esr.imm16()),
        ec::WFX => El2Exit::Wfx,
        other => El2Exit::Other {
            ec: other,
            iss: esr.iss(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::abi::signal as sig;
    use crate::kernel::signal::fault_siginfo;
    use crate::vm::vma::{Prot, Vma};

    fn ctx(esr: u64, far: u64) -> FaultContext {
        FaultContext {
            esr: Esr(esr),
            far,
            sp: 0x7fff_fff8,
        }
    }

    fn exit(esr: u64, far: u64) -> VcpuExit {
        match decode_el0(&ctx(esr, far)) {
            El0Event::Exit(exit) => exit,
            other => panic!("{esr:#x} decoded to {other:?}"),
        }
    }

    // Syndromes as an EL0 fault on real hardware reports them.
    const SVC0: u64 = 0x5600_0000; // EC 0x15, IL, imm 0
    const SVC_IMM: u64 = 0x5600_1234; // svc #0x1234
    const UNDEF: u64 = 0x0200_0000; // EC 0x00, IL
    const BRK_F000: u64 = 0xf200_f000; // brk #0xf000
    const DABT_READ_L3_TRANSLATION: u64 = 0x9200_0007;
    const DABT_WRITE_L3_PERMISSION: u64 = 0x9200_004f;
    const DABT_DC_CVAU_PERMISSION: u64 = 0x9200_014f; // CM and WnR set
    const DABT_ALIGNMENT: u64 = 0x9200_0061;
    const DABT_FNV_TRANSLATION: u64 = 0x9200_0407;
    const DABT_TLB_CONFLICT: u64 = 0x9200_0030;
    const DABT_EXTERNAL: u64 = 0x9200_0010;
    const IABT_L2_TRANSLATION: u64 = 0x8200_0006;
    const IABT_L3_PERMISSION: u64 = 0x8200_000f;
    const PC_ALIGN: u64 = 0x8a00_0000;
    const SP_ALIGN: u64 = 0x9a00_0000;
    const FP_TRAP: u64 = 0x1e00_0000; // EC 0x07

    #[test]
    fn esr_fields_sit_where_the_arm_arm_puts_them() {
        let esr = Esr(DABT_WRITE_L3_PERMISSION);
        assert_eq!(esr.ec(), 0x24);
        assert!(esr.il());
        assert_eq!(esr.iss(), 0x4f);
        assert_eq!(Esr(BRK_F000).imm16(), 0xf000);
        assert_eq!(Esr(BRK_F000).ec(), ec::BRK64);
    }

    #[test]
    fn fault_status_codes_decode_with_their_level() {
        assert_eq!(FaultStatus::from_code(0x07), FaultStatus::Translation(3));
        assert_eq!(FaultStatus::from_code(0x04), FaultStatus::Translation(0));
        assert_eq!(FaultStatus::from_code(0x0d), FaultStatus::Permission(1));
        assert_eq!(FaultStatus::from_code(0x0b), FaultStatus::AccessFlag(3));
        assert_eq!(FaultStatus::from_code(0x02), FaultStatus::AddressSize(2));
        assert_eq!(FaultStatus::from_code(0x21), FaultStatus::Alignment);
        assert_eq!(FaultStatus::from_code(0x30), FaultStatus::TlbConflict);
        assert_eq!(FaultStatus::from_code(0x10), FaultStatus::External);
        assert_eq!(FaultStatus::from_code(0x22), FaultStatus::Other(0x22));
    }

    #[test]
    fn every_svc_immediate_is_a_syscall() {
        assert_eq!(exit(SVC0, 0), VcpuExit::Syscall);
        assert_eq!(exit(SVC_IMM, 0), VcpuExit::Syscall);
    }

    #[test]
    fn data_aborts_give_address_access_and_kind() {
        assert_eq!(
            exit(DABT_READ_L3_TRANSLATION, 0x1234),
            VcpuExit::MemoryFault {
                addr: 0x1234,
                access: Access::Read,
                unmapped: true
            }
        );
        assert_eq!(
            exit(DABT_WRITE_L3_PERMISSION, 0x5000),
            VcpuExit::MemoryFault {
                addr: 0x5000,
                access: Access::Write,
                unmapped: false
            }
        );
        // Cache maintenance reports WnR = 1 but is a read, as Linux counts it.
        assert_eq!(
            exit(DABT_DC_CVAU_PERMISSION, 0x5000),
            VcpuExit::MemoryFault {
                addr: 0x5000,
                access: Access::Read,
                unmapped: false
            }
        );
        assert_eq!(
            exit(DABT_FNV_TRANSLATION, 0xdead),
            VcpuExit::MemoryFault {
                addr: 0,
                access: Access::Read,
                unmapped: true
            }
        );
    }

    #[test]
    fn instruction_aborts_are_execute_faults() {
        assert_eq!(
            exit(IABT_L2_TRANSLATION, 0x40_0000),
            VcpuExit::MemoryFault {
                addr: 0x40_0000,
                access: Access::Execute,
                unmapped: true
            }
        );
        assert_eq!(
            exit(IABT_L3_PERMISSION, 0x40_1000),
            VcpuExit::MemoryFault {
                addr: 0x40_1000,
                access: Access::Execute,
                unmapped: false
            }
        );
    }

    #[test]
    fn alignment_faults_report_the_address_pc_or_sp() {
        assert_eq!(
            exit(DABT_ALIGNMENT, 0x1001),
            VcpuExit::Alignment { addr: Some(0x1001) }
        );
        assert_eq!(
            exit(PC_ALIGN, 0x40_0002),
            VcpuExit::Alignment {
                addr: Some(0x40_0002)
            }
        );
        assert_eq!(
            exit(SP_ALIGN, 0),
            VcpuExit::Alignment {
                addr: Some(0x7fff_fff8)
            }
        );
    }

    #[test]
    fn undefined_and_brk_and_debug_classes() {
        assert_eq!(exit(UNDEF, 0), VcpuExit::Undefined);
        assert_eq!(exit(BRK_F000, 0), VcpuExit::Breakpoint);
        assert_eq!(
            exit(0xd200_0040, 0x8000),
            VcpuExit::Debug(DebugStop::Watchpoint {
                addr: 0x8000,
                access: Access::Write
            })
        );
        assert_eq!(exit(0xca00_0022, 0), VcpuExit::Debug(DebugStop::Step));
    }

    #[test]
    fn host_problems_are_not_guest_exits() {
        assert_eq!(
            decode_el0(&ctx(DABT_TLB_CONFLICT, 0)),
            El0Event::TlbConflict
        );
        assert_eq!(
            decode_el0(&ctx(DABT_EXTERNAL, 0)),
            El0Event::Unexpected {
                ec: 0x24,
                iss: 0x10
            }
        );
        assert_eq!(
            decode_el0(&ctx(FP_TRAP, 0)),
            El0Event::Unexpected { ec: 0x07, iss: 0 }
        );
    }

    #[test]
    fn el2_exits_carry_the_hvc_immediate() {
        assert_eq!(decode_el2(Esr(0x5a00_0001)), El2Exit::Hvc(1));
        assert_eq!(decode_el2(Esr(0x0600_0000)), El2Exit::Wfx);
        assert_eq!(
            decode_el2(Esr(0x9200_0007)),
            El2Exit::Other {
                ec: 0x24,
                iss: 0x07
            }
        );
    }

    /// The whole chain a fault takes: syndrome, exit, then the signal Linux sends.
    #[test]
    fn syndromes_become_the_signals_linux_sends() {
        let pc = 0x40_0100;
        let read_only = Vma::anonymous(0x5000..0x6000, Prot::READ);
        let signal = |esr: u64, far: u64, vma: Option<&Vma>| {
            let info = fault_siginfo(exit(esr, far), pc, vma).expect("a fault signal");
            (info.signo, info.code, info.fields[0])
        };

        assert_eq!(
            signal(DABT_READ_L3_TRANSLATION, 0x1234, None),
            (sig::SIGSEGV, sig::code::SEGV_MAPERR, 0x1234)
        );
        assert_eq!(
            signal(DABT_WRITE_L3_PERMISSION, 0x5008, Some(&read_only)),
            (sig::SIGSEGV, sig::code::SEGV_ACCERR, 0x5008)
        );
        // PROT_NONE pages have no descriptor: a translation fault inside a VMA is ACCERR.
        assert_eq!(
            signal(DABT_READ_L3_TRANSLATION, 0x5008, Some(&read_only)),
            (sig::SIGSEGV, sig::code::SEGV_ACCERR, 0x5008)
        );
        assert_eq!(
            signal(DABT_ALIGNMENT, 0x1001, None),
            (sig::SIGBUS, sig::code::BUS_ADRALN, 0x1001)
        );
        assert_eq!(
            signal(UNDEF, 0, None),
            (sig::SIGILL, sig::code::ILL_ILLOPC, pc)
        );
        assert_eq!(
            signal(BRK_F000, 0, None),
            (sig::SIGTRAP, sig::code::TRAP_BRKPT, pc)
        );
        let mut past_eof = read_only.clone();
        past_eof.past_eof = true;
        assert_eq!(
            signal(DABT_READ_L3_TRANSLATION, 0x5010, Some(&past_eof)),
            (sig::SIGBUS, sig::code::BUS_ADRERR, 0x5010)
        );
        assert_eq!(fault_siginfo(exit(SVC0, 0), pc, None), None);
    }
}
