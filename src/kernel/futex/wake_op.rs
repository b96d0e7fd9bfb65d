//! `FUTEX_WAKE_OP`: an atomic operation on a second word, then wakes on both words, the second
//! only if the second word's old value passes a comparison (futex(2), `FUTEX_WAKE_OP`).
//!
//! The operation word packs `op:4 cmp:4 oparg:12 cmparg:12`, from the top; bit 3 of `op` is
//! `FUTEX_OP_OPARG_SHIFT`, and both arguments are signed 12-bit numbers.

use super::{Place, wake_in};
use crate::kernel::abi::errno::{Errno, SysResult};
use crate::kernel::abi::futex::{
    FUTEX_BITSET_MATCH_ANY, FUTEX_OP_ADD, FUTEX_OP_ANDN, FUTEX_OP_CMP_EQ, FUTEX_OP_CMP_GE,
    FUTEX_OP_CMP_GT, FUTEX_OP_CMP_LE, FUTEX_OP_CMP_LT, FUTEX_OP_CMP_NE, FUTEX_OP_OPARG_SHIFT,
    FUTEX_OP_OR, FUTEX_OP_SET, FUTEX_OP_XOR,
};
use crate::kernel::task::Task;

/// Applies `encoded` to the word at `second`, wakes up to `nr_wake` waiters on `first`, and
/// up to `nr_wake2` on `second` if the comparison holds; returns how many were woken. An
/// unknown operation is `ENOSYS` before the word is touched, an unknown comparison `ENOSYS`
/// after it changed (as Linux finds it), a word that cannot be written `EFAULT`.
///
/// Everything happens under the table lock, as Linux holds both hash buckets: a
/// `futex_waitv` waiter on both words is taken off both queues by the one call.
pub fn wake_op(
    task: &Task,
    first: Place<'_>,
    second: Place<'_>,
    nr_wake: i32,
    nr_wake2: i32,
    encoded: u32,
) -> SysResult<u64> {
    let op = WakeOp::decode(encoded);
    if op.apply(0).is_none() {
        return Err(Errno::ENOSYS);
    }
    let mut queues = task.process.futexes.lock();
    let old = task
        .memory
        .update_u32(second.key().addr, |old| op.apply(old))?;
    let wake_second = op.compare(old).ok_or(Errno::ENOSYS)?;

    let mut woken = wake_in(&mut queues, first, nr_wake, FUTEX_BITSET_MATCH_ANY)?;
    if wake_second {
        woken += wake_in(&mut queues, second, nr_wake2, FUTEX_BITSET_MATCH_ANY)?;
    }
    Ok(u64::from(woken))
}

/// A decoded `FUTEX_WAKE_OP` operation word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeOp {
    /// `FUTEX_OP_SET` .. `FUTEX_OP_XOR`, or anything else (`ENOSYS`).
    pub op: u32,
    /// The operand, already shifted for `FUTEX_OP_OPARG_SHIFT`.
    pub oparg: u32,
    /// `FUTEX_OP_CMP_EQ` .. `FUTEX_OP_CMP_GE`, or anything else (`ENOSYS`).
    pub cmp: u32,
    /// The value the old word is compared with.
    pub cmparg: i32,
}

/// Sign-extends a 12-bit field.
fn signed12(field: u32) -> i32 {
    ((field << 20) as i32) >> 20
}

impl WakeOp {
    /// Decodes `encoded` as `futex_atomic_op_inuser` does. A shift outside `0..=31` is masked
    /// to 5 bits (Linux logs it and goes on).
    pub fn decode(encoded: u32) -> WakeOp {
        let mut oparg = signed12((encoded >> 12) & 0xfff);
        if (encoded >> 28) & FUTEX_OP_OPARG_SHIFT != 0 {
            oparg = 1 << (oparg & 31);
        }
        WakeOp {
            op: (encoded >> 28) & 7,
            oparg: oparg as u32,
            cmp: (encoded >> 24) & 0xf,
            cmparg: signed12(encoded & 0xfff),
        }
    }

    /// The new value of a word that held `old`; `None` for an unknown operation.
    pub fn apply(&self, old: u32) -> Option<u32> {
        Some(match self.op {
            FUTEX_OP_SET => self.oparg,
            FUTEX_OP_ADD => old.wrapping_add(self.oparg),
            FUTEX_OP_OR => old | self.oparg,
            FUTEX_OP_ANDN => old & !self.oparg,
            FUTEX_OP_XOR => old ^ self.oparg,
            _ => return None,
        })
    }

    /// Whether the old value passes the comparison (signed); `None` for an unknown one.
    pub fn compare(&self, old: u32) -> Option<bool> {
        let (old, arg) = (old as i32, self.cmparg);
        Some(match self.cmp {
            FUTEX_OP_CMP_EQ => old == arg,
            FUTEX_OP_CMP_NE => old != arg,
            FUTEX_OP_CMP_LT => old < arg,
            FUTEX_OP_CMP_LE => old <= arg,
            FUTEX_OP_CMP_GT => old > arg,
            FUTEX_OP_CMP_GE => old >= arg,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `FUTEX_OP` from `<linux/futex.h>`.
    fn encode(op: u32, oparg: u32, cmp: u32, cmparg: u32) -> u32 {
        ((op & 0xf) << 28) | ((cmp & 0xf) << 24) | ((oparg & 0xfff) << 12) | (cmparg & 0xfff)
    }

    #[test]
    fn every_operation_computes_the_new_word() {
        let new = |op, oparg| WakeOp::decode(encode(op, oparg, 0, 0)).apply(0b1100);
        assert_eq!(new(FUTEX_OP_SET, 5), Some(5));
        assert_eq!(new(FUTEX_OP_ADD, 1), Some(13));
        assert_eq!(new(FUTEX_OP_OR, 3), Some(0b1111));
        assert_eq!(new(FUTEX_OP_ANDN, 0b0100), Some(0b1000));
        assert_eq!(new(FUTEX_OP_XOR, 0xff), Some(0b1100 ^ 0xff));
        assert_eq!(new(5, 1), None);
        assert_eq!(new(7, 1), None);
    }

    #[test]
    fn arguments_are_signed_twelve_bit_numbers() {
        let op = WakeOp::decode(encode(FUTEX_OP_ADD, 0xfff, FUTEX_OP_CMP_LT, 0x800));
        assert_eq!(op.apply(10), Some(9));
        assert_eq!(op.cmparg, -2048);
        assert_eq!(op.compare(-3000i32 as u32), Some(true));
        assert_eq!(op.compare(0), Some(false));
    }

    #[test]
    fn the_shift_flag_makes_the_operand_a_bit() {
        let or_shift = FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT;
        assert_eq!(WakeOp::decode(encode(or_shift, 4, 0, 0)).apply(5), Some(21));
        // Out-of-range shifts are masked, not refused.
        assert_eq!(WakeOp::decode(encode(or_shift, 33, 0, 0)).oparg, 2);
        assert_eq!(WakeOp::decode(encode(or_shift, 0xfff, 0, 0)).oparg, 1 << 31);
    }

    #[test]
    fn comparisons_are_signed_and_unknown_ones_are_none() {
        let cmp =
            |cmp, old: i32| WakeOp::decode(encode(FUTEX_OP_SET, 0, cmp, 0)).compare(old as u32);
        assert_eq!(cmp(FUTEX_OP_CMP_EQ, 0), Some(true));
        assert_eq!(cmp(FUTEX_OP_CMP_NE, 0), Some(false));
        assert_eq!(cmp(FUTEX_OP_CMP_LT, -1), Some(true));
        assert_eq!(cmp(FUTEX_OP_CMP_LE, 0), Some(true));
        assert_eq!(cmp(FUTEX_OP_CMP_GT, -1), Some(false));
        assert_eq!(cmp(FUTEX_OP_CMP_GE, 0), Some(true));
        assert_eq!(cmp(6, 0), None);
        assert_eq!(cmp(15, 0), None);
    }
}
