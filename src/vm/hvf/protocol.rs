//! The protocol between the EL1 shim and the host.
//!
//! The shim leaves the guest for the host only through `hvc #imm`, the immediate saying why
//! ([`ShimExit`]). It touches no guest register on the way out: when the host sees the exit,
//! `x0`..`x30`, `SP_EL0`, `TPIDR_EL0` and the FP/SIMD registers are the guest's,
//! `ELR_EL1`/`SPSR_EL1` hold the guest's PC and `PSTATE`, and `ESR_EL1`/`FAR_EL1` the
//! syndrome, all read with the framework's register calls. While a vCPU is stopped in the
//! shim, the guest PC the runtime sees is therefore `ELR_EL1`, not the vCPU's PC.
//!
//! The host answers through the vCPU's mailbox, a 4 KiB page of the runtime area only EL1
//! can reach: word 0 is a request count, followed by that many `(op, argument)` pairs
//! ([`Request`]). When `hvc` returns, the shim saves `x16` and `x17` on its EL1 stack, carries
//! out the requests in order, ends with `dsb ish; isb`, stores 0 in the count, restores the two
//! registers and returns to the guest with `eret`. An empty mailbox costs one load. The first
//! entry into a vCPU starts at the same code with the MMU set-up requests in the mailbox
//! ([`MmuConfig::requests`]), so the MMU is enabled from inside the guest.

use thiserror::Error;

use super::pagetable::{Flush, VA_BITS};
use crate::vm::vma::PAGE_SIZE;

/// The `hvc` immediates the shim uses.
pub mod hvc {
    /// The guest ran `svc #0` at EL0.
    pub const SYSCALL: u16 = 0;
    /// The guest took another synchronous exception at EL0.
    pub const EXCEPTION: u16 = 1;
    /// The shim itself took an exception at EL1.
    pub const SHIM_FAULT: u16 = 2;
    /// An IRQ, FIQ or SError reached the shim's vectors.
    pub const ASYNC: u16 = 3;
}

/// Why the shim called the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShimExit {
    /// A syscall: `ELR_EL1` is past the `svc`; the host puts the result in `x0`.
    Syscall,
    /// A fault, undefined instruction or `brk` at EL0: `ESR_EL1`, `FAR_EL1` and `ELR_EL1`
    /// (the instruction) describe it; decode with [`super::esr::decode_el0`].
    Exception,
    /// The shim faulted (a bug in the shim or in the host's set-up): fatal.
    ShimFault,
    /// An asynchronous exception, which nothing enables: fatal.
    Async,
}

impl ShimExit {
    /// The exit an `hvc` immediate stands for.
    pub fn from_hvc(imm: u16) -> Result<ShimExit, ProtocolError> {
        match imm {
            hvc::SYSCALL => Ok(ShimExit::Syscall),
            hvc::EXCEPTION => Ok(ShimExit::Exception),
            hvc::SHIM_FAULT => Ok(ShimExit::ShimFault),
            hvc::ASYNC => Ok(ShimExit::Async),
            other => Err(ProtocolError::UnknownHvc(other)),
        }
    }

    /// The immediate of this exit's `hvc`.
    pub fn hvc(self) -> u16 {
        match self {
            ShimExit::Syscall => hvc::SYSCALL,
            ShimExit::Exception => hvc::EXCEPTION,
            ShimExit::ShimFault => hvc::SHIM_FAULT,
            ShimExit::Async => hvc::ASYNC,
        }
    }
}

/// One thing the host asks the shim to do before returning to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `tlbi vaae1is` for the page at this guest address (all ASIDs, inner shareable).
    TlbiPage(u64),
    /// `tlbi vmalle1is`: the whole EL1&0 TLB, inner shareable.
    TlbiAll,
    /// `ic ialluis`: every instruction cache, inner shareable.
    IcacheAll,
    /// `msr mair_el1`.
    SetMair(u64),
    /// `msr tcr_el1`.
    SetTcr(u64),
    /// `msr ttbr0_el1`.
    SetTtbr0(u64),
    /// `msr sctlr_el1` then `isb` (turns the MMU on).
    SetSctlr(u64),
}

/// Operation codes in the mailbox, one per [`Request`] kind.
pub mod op {
    /// [`super::Request::TlbiPage`]; the argument is the `TLBI` operand.
    pub const TLBI_PAGE: u64 = 1;
    /// [`super::Request::TlbiAll`]; no argument.
    pub const TLBI_ALL: u64 = 2;
    /// [`super::Request::IcacheAll`]; no argument.
    pub const ICACHE_ALL: u64 = 3;
    /// [`super::Request::SetMair`].
    pub const SET_MAIR: u64 = 4;
    /// [`super::Request::SetTcr`].
    pub const SET_TCR: u64 = 5;
    /// [`super::Request::SetTtbr0`].
    pub const SET_TTBR0: u64 = 6;
    /// [`super::Request::SetSctlr`].
    pub const SET_SCTLR: u64 = 7;
}

/// Words in a mailbox page.
pub const MAILBOX_WORDS: usize = (PAGE_SIZE / 8) as usize;

/// Requests one mailbox holds.
pub const MAILBOX_CAPACITY: usize = (MAILBOX_WORDS - 1) / 2;

/// More pages than this to invalidate become one [`Request::TlbiAll`].
pub const TLBI_PAGE_LIMIT: u64 = 64;

/// A malformed exit or mailbox.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// The shim used an `hvc` immediate the protocol does not define.
    #[error("the shim exited with unknown hvc immediate {0:#x}")]
    UnknownHvc(u16),
    /// More requests than a mailbox holds.
    #[error("{0} requests do not fit in one mailbox ({MAILBOX_CAPACITY} do)")]
    MailboxFull(usize),
    /// A mailbox word that is not a request.
    #[error("mailbox entry {index} has unknown operation {op:#x}")]
    UnknownOp {
        /// The entry's position.
        index: usize,
        /// Its operation word.
        op: u64,
    },
    /// A count larger than a mailbox.
    #[error("mailbox count {0} exceeds its capacity")]
    BadCount(u64),
}

impl Request {
    fn encode(self) -> [u64; 2] {
        match self {
            // The TLBI operand: VA[55:12] in bits [43:0], the ASID field (ignored by VAAE1IS)
            // zero.
            Request::TlbiPage(va) => [op::TLBI_PAGE, (va >> 12) & ((1 << 44) - 1)],
            Request::TlbiAll => [op::TLBI_ALL, 0],
            Request::IcacheAll => [op::ICACHE_ALL, 0],
            Request::SetMair(v) => [op::SET_MAIR, v],
            Request::SetTcr(v) => [op::SET_TCR, v],
            Request::SetTtbr0(v) => [op::SET_TTBR0, v],
            Request::SetSctlr(v) => [op::SET_SCTLR, v],
        }
    }

    fn decode(index: usize, op: u64, arg: u64) -> Result<Request, ProtocolError> {
        Ok(match op {
            op::TLBI_PAGE => Request::TlbiPage(arg << 12),
            op::TLBI_ALL => Request::TlbiAll,
            op::ICACHE_ALL => Request::IcacheAll,
            op::SET_MAIR => Request::SetMair(arg),
            op::SET_TCR => Request::SetTcr(arg),
            op::SET_TTBR0 => Request::SetTtbr0(arg),
            op::SET_SCTLR => Request::SetSctlr(arg),
            _ => return Err(ProtocolError::UnknownOp { index, op }),
        })
    }
}

/// Writes `requests` into the mailbox page `mailbox`.
pub fn encode_mailbox(
    requests: &[Request],
    mailbox: &mut [u64; MAILBOX_WORDS],
) -> Result<(), ProtocolError> {
    if requests.len() > MAILBOX_CAPACITY {
        return Err(ProtocolError::MailboxFull(requests.len()));
    }
    mailbox[0] = requests.len() as u64;
    for (i, request) in requests.iter().enumerate() {
        let [op, arg] = request.encode();
        mailbox[1 + 2 * i] = op;
        mailbox[2 + 2 * i] = arg;
    }
    Ok(())
}

/// Reads the requests in the mailbox page `mailbox` (what the shim will do).
pub fn decode_mailbox(mailbox: &[u64; MAILBOX_WORDS]) -> Result<Vec<Request>, ProtocolError> {
    let count = mailbox[0];
    if count > MAILBOX_CAPACITY as u64 {
        return Err(ProtocolError::BadCount(count));
    }
    (0..count as usize)
        .map(|i| Request::decode(i, mailbox[1 + 2 * i], mailbox[2 + 2 * i]))
        .collect()
}

/// The requests that carry out `flush`: one `TLBI` per page, or one for everything past
/// [`TLBI_PAGE_LIMIT`] pages, then the instruction cache if asked.
pub fn flush_requests(flush: &Flush) -> Vec<Request> {
    let mut requests = Vec::new();
    if flush.pages() > TLBI_PAGE_LIMIT {
        requests.push(Request::TlbiAll);
    } else {
        for range in &flush.tlb {
            requests.extend(
                (range.start..range.end)
                    .step_by(PAGE_SIZE as usize)
                    .map(Request::TlbiPage),
            );
        }
    }
    if flush.icache {
        requests.push(Request::IcacheAll);
    }
    requests
}

/// The EL1 translation controls the shim loads to turn the MMU on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuConfig {
    /// `MAIR_EL1`.
    pub mair: u64,
    /// `TCR_EL1`.
    pub tcr: u64,
    /// `TTBR0_EL1`.
    pub ttbr0: u64,
    /// `SCTLR_EL1`.
    pub sctlr: u64,
}

/// `MAIR_EL1` attribute 0: normal memory, inner and outer write-back, read/write-allocate.
pub const MAIR_NORMAL_WB: u64 = 0xff;

impl MmuConfig {
    /// The controls for tables rooted at `ttbr0` in a VM with `ipa_bits` of IPA space.
    ///
    /// `TCR_EL1`: `T0SZ` = 64 - 48, inner/outer write-back walks, inner shareable, 4 KiB
    /// granule, `TTBR1` walks disabled (`EPD1`, with a valid `TG1`), `IPS` from the IPA size,
    /// top byte ignored for EL0 addresses (`TBI0`, as Linux sets it). `SCTLR_EL1`: the MMU and
    /// caches on, SP alignment checks at EL1 and EL0, and the EL0 permissions Linux grants
    /// (`DC ZVA`, `CTR_EL0`, cache maintenance, `WFI`/`WFE` untrapped), with the RES1 bits of
    /// Armv8.0.
    pub fn new(ttbr0: u64, ipa_bits: u32) -> Result<MmuConfig, super::layout::LayoutError> {
        let ips = super::layout::ips_field(ipa_bits)?;
        let tcr = u64::from(64 - VA_BITS) // T0SZ [5:0]
            | (0b01 << 8) // IRGN0: write-back, write-allocate
            | (0b01 << 10) // ORGN0
            | (0b11 << 12) // SH0: inner shareable; TG0 [15:14] = 0b00: 4 KiB
            | (1 << 23) // EPD1
            | (0b10 << 30) // TG1: 4 KiB
            | (ips << 32)
            | (1 << 37); // TBI0
        let sctlr = (1 << 0) // M
            | (1 << 2) // C
            | (1 << 3) // SA
            | (1 << 4) // SA0
            | (1 << 12) // I
            | (1 << 14) // DZE
            | (1 << 15) // UCT
            | (1 << 16) // nTWI
            | (1 << 18) // nTWE
            | (1 << 26) // UCI
            | (1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29); // RES1
        Ok(MmuConfig {
            mair: MAIR_NORMAL_WB,
            tcr,
            ttbr0,
            sctlr,
        })
    }

    /// The mailbox requests that load these controls: translation registers first, a TLB
    /// invalidation, and `SCTLR_EL1` last, which turns the MMU on.
    pub fn requests(&self) -> [Request; 6] {
        [
            Request::SetMair(self.mair),
            Request::SetTcr(self.tcr),
            Request::SetTtbr0(self.ttbr0),
            Request::TlbiAll,
            Request::IcacheAll,
            Request::SetSctlr(self.sctlr),
        ]
    }
}

#[cfg(test)]
// A flush of one range is a one-element list of ranges, not a mistaken range of elements.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn hvc_immediates_round_trip_and_unknown_ones_are_refused() {
        for exit in [
            ShimExit::Syscall,
            ShimExit::Exception,
            ShimExit::ShimFault,
            ShimExit::Async,
        ] {
            assert_eq!(ShimExit::from_hvc(exit.hvc()), Ok(exit));
        }
        assert_eq!(ShimExit::from_hvc(0), Ok(ShimExit::Syscall));
        assert_eq!(ShimExit::from_hvc(7), Err(ProtocolError::UnknownHvc(7)));
    }

    #[test]
    fn mailbox_words_are_count_then_op_argument_pairs() {
        let mut mailbox = [0u64; MAILBOX_WORDS];
        let requests = [
            Request::TlbiPage(0x0000_7fff_1234_5000),
            Request::IcacheAll,
            Request::SetTtbr0(0x8_0000_0000),
        ];
        encode_mailbox(&requests, &mut mailbox).unwrap();
        assert_eq!(
            &mailbox[..7],
            &[3, 1, 0x7_fff1_2345, 3, 0, 6, 0x8_0000_0000]
        );
        assert_eq!(decode_mailbox(&mailbox).unwrap(), requests);
    }

    #[test]
    fn tlbi_operands_drop_the_page_offset_and_the_tag_byte() {
        let mut mailbox = [0u64; MAILBOX_WORDS];
        encode_mailbox(&[Request::TlbiPage(0xab12_ffff_ffff_f000)], &mut mailbox).unwrap();
        // VA[55:12] only: the top byte (ignored by TBI0) is not part of the operand.
        assert_eq!(mailbox[2], 0x12f_ffff_ffff);
    }

    #[test]
    fn malformed_mailboxes_are_refused() {
        let mut mailbox = [0u64; MAILBOX_WORDS];
        let too_many = vec![Request::TlbiAll; MAILBOX_CAPACITY + 1];
        assert_eq!(
            encode_mailbox(&too_many, &mut mailbox),
            Err(ProtocolError::MailboxFull(MAILBOX_CAPACITY + 1))
        );
        assert!(encode_mailbox(&too_many[1..], &mut mailbox).is_ok());
        mailbox[0] = 1;
        mailbox[1] = 99;
        assert_eq!(
            decode_mailbox(&mailbox),
            Err(ProtocolError::UnknownOp { index: 0, op: 99 })
        );
        mailbox[0] = 300;
        assert_eq!(decode_mailbox(&mailbox), Err(ProtocolError::BadCount(300)));
    }

    #[test]
    fn small_flushes_invalidate_by_page_and_large_ones_everything() {
        let small = Flush {
            tlb: vec![0x1000..0x3000, 0x10000..0x11000],
            icache: true,
        };
        assert_eq!(
            flush_requests(&small),
            vec![
                Request::TlbiPage(0x1000),
                Request::TlbiPage(0x2000),
                Request::TlbiPage(0x10000),
                Request::IcacheAll
            ]
        );
        let block = Flush {
            tlb: vec![0x20_0000..0x40_0000],
            icache: false,
        };
        assert_eq!(flush_requests(&block), vec![Request::TlbiAll]);
        assert!(flush_requests(&Flush::default()).is_empty());
    }

    #[test]
    fn mmu_controls_have_the_architectural_field_values() {
        let mmu = MmuConfig::new(0x10_0000_0000, 36).unwrap();
        assert_eq!(mmu.tcr & 0x3f, 16, "T0SZ for 48-bit addresses");
        assert_eq!((mmu.tcr >> 14) & 0b11, 0b00, "TG0 = 4 KiB");
        assert_eq!((mmu.tcr >> 30) & 0b11, 0b10, "TG1 = 4 KiB");
        assert_eq!((mmu.tcr >> 32) & 0b111, 0b001, "IPS = 36 bits");
        assert_eq!(mmu.tcr & (1 << 23), 1 << 23, "EPD1");
        assert_eq!(mmu.tcr & (1 << 37), 1 << 37, "TBI0");
        assert_eq!(mmu.tcr, 0x21_8080_3510);
        assert_eq!(mmu.sctlr, 0x34d5_d81d);
        assert_eq!(MmuConfig::new(0, 40).unwrap().tcr >> 32 & 0b111, 0b010);
        let requests = mmu.requests();
        assert_eq!(requests.last(), Some(&Request::SetSctlr(mmu.sctlr)));
        assert_eq!(requests[2], Request::SetTtbr0(0x10_0000_0000));
    }
}
