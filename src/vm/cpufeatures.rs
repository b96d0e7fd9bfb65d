//! CPU features: from the ID registers a backend's CPU reports to the `AT_HWCAP` and
//! `AT_HWCAP2` words the guest's C library reads.
//!
//! The decoding follows the Arm Architecture Reference Manual field layout and the rules the
//! Linux arm64 kernel uses to derive each hwcap. Only features whose EL0 behaviour the runtime
//! delivers are advertised: SVE (no SVE signal frame yet), pointer authentication (keys are not
//! enabled), BTI (no guarded pages) and MTE are left out even when the CPU has them, which is
//! what Linux does for a kernel built without them.

use super::HwCaps;

/// The ID registers the hwcaps come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdRegisters {
    /// `ID_AA64ISAR0_EL1`.
    pub isar0: u64,
    /// `ID_AA64ISAR1_EL1`.
    pub isar1: u64,
    /// `ID_AA64PFR0_EL1`.
    pub pfr0: u64,
    /// `ID_AA64PFR1_EL1`.
    pub pfr1: u64,
    /// `ID_AA64MMFR2_EL1`.
    pub mmfr2: u64,
}

/// `AT_HWCAP` bits (Linux `asm/hwcap.h`).
pub mod hwcap {
    pub const FP: u64 = 1 << 0;
    pub const ASIMD: u64 = 1 << 1;
    pub const AES: u64 = 1 << 3;
    pub const PMULL: u64 = 1 << 4;
    pub const SHA1: u64 = 1 << 5;
    pub const SHA2: u64 = 1 << 6;
    pub const CRC32: u64 = 1 << 7;
    pub const ATOMICS: u64 = 1 << 8;
    pub const FPHP: u64 = 1 << 9;
    pub const ASIMDHP: u64 = 1 << 10;
    pub const ASIMDRDM: u64 = 1 << 12;
    pub const JSCVT: u64 = 1 << 13;
    pub const FCMA: u64 = 1 << 14;
    pub const LRCPC: u64 = 1 << 15;
    pub const DCPOP: u64 = 1 << 16;
    pub const SHA3: u64 = 1 << 17;
    pub const SM3: u64 = 1 << 18;
    pub const SM4: u64 = 1 << 19;
    pub const ASIMDDP: u64 = 1 << 20;
    pub const SHA512: u64 = 1 << 21;
    pub const ASIMDFHM: u64 = 1 << 23;
    pub const DIT: u64 = 1 << 24;
    pub const USCAT: u64 = 1 << 25;
    pub const ILRCPC: u64 = 1 << 26;
    pub const FLAGM: u64 = 1 << 27;
    pub const SSBS: u64 = 1 << 28;
    pub const SB: u64 = 1 << 29;
}

/// `AT_HWCAP2` bits (Linux `asm/hwcap.h`).
pub mod hwcap2 {
    pub const DCPODP: u64 = 1 << 0;
    pub const FLAGM2: u64 = 1 << 7;
    pub const FRINT: u64 = 1 << 8;
    pub const I8MM: u64 = 1 << 13;
    pub const BF16: u64 = 1 << 14;
    pub const DGH: u64 = 1 << 15;
    pub const RNG: u64 = 1 << 16;
}

/// An unsigned 4-bit ID register field at bit `shift`.
fn field(reg: u64, shift: u32) -> u64 {
    (reg >> shift) & 0xf
}

/// A signed 4-bit field (FP and AdvSIMD use 0xf for "not implemented").
fn signed_field(reg: u64, shift: u32) -> i64 {
    let raw = field(reg, shift) as i64;
    if raw >= 8 { raw - 16 } else { raw }
}

impl IdRegisters {
    /// The hwcaps Linux would report for a CPU with these ID registers.
    pub fn hwcaps(&self) -> HwCaps {
        let mut caps = HwCaps::default();
        let set = |word: &mut u64, present: bool, bit: u64| {
            if present {
                *word |= bit;
            }
        };
        let (isar0, isar1, pfr0, pfr1, mmfr2) =
            (self.isar0, self.isar1, self.pfr0, self.pfr1, self.mmfr2);

        let h = &mut caps.hwcap;
        set(h, signed_field(pfr0, 16) >= 0, hwcap::FP);
        set(h, signed_field(pfr0, 16) >= 1, hwcap::FPHP);
        set(h, signed_field(pfr0, 20) >= 0, hwcap::ASIMD);
        set(h, signed_field(pfr0, 20) >= 1, hwcap::ASIMDHP);
        set(h, field(pfr0, 48) >= 1, hwcap::DIT);
        set(h, field(isar0, 4) >= 1, hwcap::AES);
        set(h, field(isar0, 4) >= 2, hwcap::PMULL);
        set(h, field(isar0, 8) >= 1, hwcap::SHA1);
        set(h, field(isar0, 12) >= 1, hwcap::SHA2);
        set(h, field(isar0, 12) >= 2, hwcap::SHA512);
        set(h, field(isar0, 16) >= 1, hwcap::CRC32);
        set(h, field(isar0, 20) >= 2, hwcap::ATOMICS);
        set(h, field(isar0, 28) >= 1, hwcap::ASIMDRDM);
        set(h, field(isar0, 32) >= 1, hwcap::SHA3);
        set(h, field(isar0, 36) >= 1, hwcap::SM3);
        set(h, field(isar0, 40) >= 1, hwcap::SM4);
        set(h, field(isar0, 44) >= 1, hwcap::ASIMDDP);
        set(h, field(isar0, 48) >= 1, hwcap::ASIMDFHM);
        set(h, field(isar0, 52) >= 1, hwcap::FLAGM);
        set(h, field(isar1, 0) >= 1, hwcap::DCPOP);
        set(h, field(isar1, 12) >= 1, hwcap::JSCVT);
        set(h, field(isar1, 16) >= 1, hwcap::FCMA);
        set(h, field(isar1, 20) >= 1, hwcap::LRCPC);
        set(h, field(isar1, 20) >= 2, hwcap::ILRCPC);
        set(h, field(isar1, 36) >= 1, hwcap::SB);
        set(h, field(pfr1, 4) >= 1, hwcap::SSBS);
        set(h, field(mmfr2, 32) >= 1, hwcap::USCAT);

        let h2 = &mut caps.hwcap2;
        set(h2, field(isar1, 0) >= 2, hwcap2::DCPODP);
        set(h2, field(isar0, 52) >= 2, hwcap2::FLAGM2);
        set(h2, field(isar1, 32) >= 1, hwcap2::FRINT);
        set(h2, field(isar1, 52) >= 1, hwcap2::I8MM);
        set(h2, field(isar1, 44) >= 1, hwcap2::BF16);
        set(h2, field(isar1, 48) >= 1, hwcap2::DGH);
        set(h2, field(isar0, 60) >= 1, hwcap2::RNG);
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ID registers of unicorn 2.1's "max" aarch64 CPU, read from the engine.
    const EMULATOR_MAX: IdRegisters = IdRegisters {
        isar0: 0x1021_1111_1021_2120,
        isar1: 0x0000_0111_0121_1012,
        pfr0: 0x0000_0001_0011_2222,
        pfr1: 0x1,
        mmfr2: 0x11,
    };

    #[test]
    fn emulator_cpu_advertises_lse_atomics_and_crypto_but_not_sve_or_pauth() {
        let caps = EMULATOR_MAX.hwcaps();
        for bit in [
            hwcap::FP,
            hwcap::ASIMD,
            hwcap::ATOMICS,
            hwcap::AES,
            hwcap::PMULL,
            hwcap::SHA512,
            hwcap::CRC32,
            hwcap::LRCPC,
            hwcap::ILRCPC,
            hwcap::ASIMDDP,
        ] {
            assert_ne!(caps.hwcap & bit, 0, "missing hwcap bit {bit:#x}");
        }
        assert_eq!(caps.hwcap & (1 << 22), 0, "SVE must not be advertised");
        assert_eq!(
            caps.hwcap & (3 << 30),
            0,
            "pointer authentication must not be advertised"
        );
        assert_eq!(caps.hwcap & hwcap::USCAT, 0, "MMFR2.AT is 0");
        assert_ne!(caps.hwcap2 & hwcap2::RNG, 0);
        assert_ne!(caps.hwcap2 & hwcap2::FLAGM2, 0);
        assert_eq!(caps.hwcap2 & (1 << 17), 0, "BTI must not be advertised");
    }

    #[test]
    fn a_cpu_without_fp_reports_no_fp_hwcaps() {
        let regs = IdRegisters {
            pfr0: 0x00ff_0000,
            ..IdRegisters::default()
        };
        let caps = regs.hwcaps();
        assert_eq!(caps.hwcap & (hwcap::FP | hwcap::ASIMD | hwcap::FPHP), 0);
    }
}
