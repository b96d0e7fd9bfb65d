//! Where things sit in the VM's intermediate physical address (IPA) space.
//!
//! Apple's chips give a VM 36 bits of IPA space (M1, M2) or more (up to 40 bits), which
//! `hv_vm_config_get_max_ipa_size` reports; Linux's 48-bit user layouts do not fit. The lower
//! half of the IPA space holds guest memory, mapped once, guest address = IPA (so stage-1
//! translation is the identity). The upper half is the runtime area: the shim's code, one slot
//! per vCPU (its mailbox and EL1 stack) and the page-table arena. Each region starts on a
//! 16 KiB boundary, because `hv_vm_map` maps whole host pages.

use std::ops::Range;

use thiserror::Error;

/// The smallest IPA size the backend works with.
pub const MIN_IPA_BITS: u32 = 36;

/// The largest IPA size it asks for (the `TCR_EL1.IPS` encoding of 48 bits).
pub const MAX_IPA_BITS: u32 = 48;

/// Alignment of every region: Apple Silicon's host page.
pub const REGION_ALIGN: u64 = 16 * 1024;

/// Bytes of IPA space reserved for the shim's code.
pub const SHIM_SIZE: u64 = 64 * 1024;

/// Bytes per vCPU slot: the mailbox page, then the EL1 stack up to the slot's end.
pub const VCPU_SLOT_SIZE: u64 = 16 * 1024;

/// The vCPU slots reserved (Hypervisor.framework allows at most this many vCPUs per VM on
/// current chips; the backend also asks `hv_vm_get_max_vcpu_count`).
pub const MAX_VCPUS: u64 = 64;

/// The IPA space cannot hold the backend's layout.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The VM offers fewer IPA bits than the backend needs.
    #[error("the VM's IPA space is {0} bits; the hvf backend needs at least {MIN_IPA_BITS}")]
    IpaTooSmall(u32),
}

/// The `TCR_EL1.IPS` / `PARange` encoding for `ipa_bits`, rounded down to an encodable size.
pub fn ips_field(ipa_bits: u32) -> Result<u64, LayoutError> {
    Ok(match ipa_bits {
        48.. => 0b101,
        44..=47 => 0b100,
        42..=43 => 0b011,
        40..=41 => 0b010,
        36..=39 => 0b001,
        other => return Err(LayoutError::IpaTooSmall(other)),
    })
}

/// The regions of one VM's IPA space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpaLayout {
    /// The IPA size used (the VM's maximum, capped at [`MAX_IPA_BITS`]).
    pub ipa_bits: u32,
    /// Guest memory: guest addresses `0..span`, at the same IPAs.
    pub guest: Range<u64>,
    /// The shim's code.
    pub shim: Range<u64>,
    /// The vCPU slots, [`VCPU_SLOT_SIZE`] bytes each.
    pub vcpu_slots: Range<u64>,
    /// The page-table arena, up to the top of the IPA space.
    pub tables: Range<u64>,
}

impl IpaLayout {
    /// The layout for a VM whose maximum IPA size is `max_ipa_bits`.
    pub fn new(max_ipa_bits: u32) -> Result<IpaLayout, LayoutError> {
        ips_field(max_ipa_bits)?;
        let ipa_bits = max_ipa_bits.min(MAX_IPA_BITS);
        let top = 1u64 << ipa_bits;
        let half = top / 2;
        let shim = half..half + SHIM_SIZE;
        let vcpu_slots = shim.end..shim.end + MAX_VCPUS * VCPU_SLOT_SIZE;
        Ok(IpaLayout {
            ipa_bits,
            guest: 0..half,
            tables: vcpu_slots.end..top,
            shim,
            vcpu_slots,
        })
    }

    /// The mailbox page of vCPU `index`.
    pub fn mailbox(&self, index: u64) -> u64 {
        self.vcpu_slots.start + index * VCPU_SLOT_SIZE
    }

    /// The initial `SP_EL1` of vCPU `index` (the top of its slot).
    pub fn el1_stack_top(&self, index: u64) -> u64 {
        self.mailbox(index) + VCPU_SLOT_SIZE
    }

    /// The number of 4 KiB tables the arena holds.
    pub fn max_tables(&self) -> usize {
        ((self.tables.end - self.tables.start) / 4096) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_36_bit_vm_gives_the_guest_32_gib() {
        let layout = IpaLayout::new(36).unwrap();
        assert_eq!(layout.guest, 0..32 << 30);
        assert_eq!(layout.shim.start, 32 << 30);
        assert_eq!(layout.tables.end, 64 << 30);
        assert_eq!(layout.mailbox(1), layout.vcpu_slots.start + 16 * 1024);
        assert_eq!(layout.el1_stack_top(0), layout.mailbox(1));
        for region in [&layout.shim, &layout.vcpu_slots, &layout.tables] {
            assert_eq!(region.start % REGION_ALIGN, 0);
            assert_eq!(region.end % REGION_ALIGN, 0);
        }
    }

    #[test]
    fn larger_ipa_spaces_grow_the_guest_and_smaller_ones_are_refused() {
        assert_eq!(IpaLayout::new(40).unwrap().guest.end, 512 << 30);
        assert_eq!(IpaLayout::new(52).unwrap().ipa_bits, 48);
        assert_eq!(IpaLayout::new(35), Err(LayoutError::IpaTooSmall(35)));
        assert_eq!(ips_field(36), Ok(0b001));
        assert_eq!(ips_field(39), Ok(0b001));
        assert_eq!(ips_field(42), Ok(0b011));
    }
}
