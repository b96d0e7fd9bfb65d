//! The initial stack of a new Linux arm64 process.
//!
//! From the top down, as `fs/exec.c` and `fs/binfmt_elf.c` lay it out: an 8-byte end marker,
//! the executable's file name, the environment strings, the argument strings, the platform
//! string `"aarch64"`, the 16 `AT_RANDOM` bytes, then (16-byte aligned) `argc`, the `argv`
//! pointers and NULL, the `envp` pointers and NULL, and the auxiliary vector ending in
//! `AT_NULL`. The stack pointer points at `argc`.

use crate::kernel::abi::auxv::{AT_EXECFN, AT_NULL, AT_PLATFORM, AT_RANDOM};

/// The platform string Linux reports on arm64.
pub const PLATFORM: &[u8] = b"aarch64";

/// Linux's limit on one argument or environment string (32 pages).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// A built initial stack, ready to be copied to guest memory at `sp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    /// The initial stack pointer (16-byte aligned); `bytes` start here.
    pub sp: u64,
    /// Everything from `sp` up to the top of the stack.
    pub bytes: Vec<u8>,
    /// Where the argument strings start and end (for `/proc/self/cmdline`).
    pub args: std::ops::Range<u64>,
    /// Where the environment strings start and end (for `/proc/self/environ`).
    pub env: std::ops::Range<u64>,
    /// Where the auxiliary vector starts, and its entries as written.
    pub auxv_addr: u64,
    /// The auxiliary vector with every pointer filled in.
    pub auxv: Vec<(u64, u64)>,
}

/// Lays out the initial stack below `top` (exclusive, 16-byte aligned).
///
/// `auxv` lists the entries that do not point into the stack; `AT_RANDOM`, `AT_EXECFN` and
/// `AT_PLATFORM` are added here, in Linux's order relative to the others (`AT_RANDOM` after
/// `AT_SECURE`, the other two at the end).
pub fn build(
    top: u64,
    args: &[Vec<u8>],
    env: &[Vec<u8>],
    execfn: &[u8],
    auxv: &[(u64, u64)],
    random: [u8; 16],
) -> InitialStack {
    // Strings and the fixed blobs are placed top-down; `cursor` is the lowest byte used and
    // `pieces` records what goes where, assembled once the bottom is known.
    let mut pieces: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut cursor = top - 8;
    let push_front = |data: &[u8], pieces: &mut Vec<(u64, Vec<u8>)>, cursor: &mut u64| -> u64 {
        *cursor -= data.len() as u64;
        pieces.push((*cursor, data.to_vec()));
        *cursor
    };

    let with_nul = |s: &[u8]| {
        let mut v = s.to_vec();
        v.push(0);
        v
    };
    let execfn_addr = push_front(&with_nul(execfn), &mut pieces, &mut cursor);
    let env_end = cursor;
    let mut env_addrs = vec![0u64; env.len()];
    for (i, var) in env.iter().enumerate().rev() {
        env_addrs[i] = push_front(&with_nul(var), &mut pieces, &mut cursor);
    }
    let env_start = cursor;
    let args_end = cursor;
    let mut arg_addrs = vec![0u64; args.len()];
    for (i, arg) in args.iter().enumerate().rev() {
        arg_addrs[i] = push_front(&with_nul(arg), &mut pieces, &mut cursor);
    }
    let args_start = cursor;

    // Align, then the platform string and the random bytes.
    let pad = cursor % 16;
    push_front(&vec![0u8; pad as usize], &mut pieces, &mut cursor);
    let platform_addr = push_front(&with_nul(PLATFORM), &mut pieces, &mut cursor);
    let random_addr = push_front(&random, &mut pieces, &mut cursor);

    // The auxiliary vector in Linux's order.
    let mut full_auxv: Vec<(u64, u64)> = Vec::with_capacity(auxv.len() + 4);
    for &(key, value) in auxv {
        full_auxv.push((key, value));
        if key == crate::kernel::abi::auxv::AT_SECURE {
            full_auxv.push((AT_RANDOM, random_addr));
        }
    }
    if !full_auxv.iter().any(|&(k, _)| k == AT_RANDOM) {
        full_auxv.push((AT_RANDOM, random_addr));
    }
    full_auxv.push((AT_EXECFN, execfn_addr));
    full_auxv.push((AT_PLATFORM, platform_addr));
    full_auxv.push((AT_NULL, 0));

    // argc, argv, NULL, envp, NULL, auxv pairs; the whole block 16-byte aligned at sp.
    let words = 1 + args.len() + 1 + env.len() + 1 + full_auxv.len() * 2;
    let sp = (cursor - words as u64 * 8) & !15;
    let mut table: Vec<u8> = Vec::with_capacity((cursor - sp) as usize);
    let mut word = |v: u64| table.extend_from_slice(&v.to_le_bytes());
    word(args.len() as u64);
    arg_addrs.iter().for_each(|&a| word(a));
    word(0);
    env_addrs.iter().for_each(|&a| word(a));
    word(0);
    let auxv_addr = sp + 8 * (1 + args.len() as u64 + 1 + env.len() as u64 + 1);
    for &(key, value) in &full_auxv {
        word(key);
        word(value);
    }
    table.resize((top - sp) as usize, 0);
    for (addr, data) in pieces {
        let at = (addr - sp) as usize;
        table[at..at + data.len()].copy_from_slice(&data);
    }

    InitialStack {
        sp,
        bytes: table,
        args: args_start..args_end,
        env: env_start..env_end,
        auxv_addr,
        auxv: full_auxv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::abi::auxv::{AT_PAGESZ, AT_SECURE};

    fn word(stack: &InitialStack, addr: u64) -> u64 {
        let at = (addr - stack.sp) as usize;
        u64::from_le_bytes(stack.bytes[at..at + 8].try_into().unwrap())
    }

    fn cstr(stack: &InitialStack, addr: u64) -> Vec<u8> {
        let at = (addr - stack.sp) as usize;
        let len = stack.bytes[at..].iter().position(|&b| b == 0).unwrap();
        stack.bytes[at..at + len].to_vec()
    }

    #[test]
    fn layout_matches_the_linux_arm64_abi() {
        let top = 0x10_0000_0000;
        let args = vec![b"prog".to_vec(), b"a b".to_vec()];
        let env = vec![b"HOME=/root".to_vec()];
        let auxv = [(AT_PAGESZ, 4096), (AT_SECURE, 0)];
        let stack = build(top, &args, &env, b"/bin/prog", &auxv, [7; 16]);

        assert_eq!(stack.sp % 16, 0, "sp is 16-byte aligned");
        assert_eq!(stack.sp + stack.bytes.len() as u64, top);
        assert_eq!(word(&stack, stack.sp), 2, "argc");
        assert_eq!(cstr(&stack, word(&stack, stack.sp + 8)), b"prog");
        assert_eq!(cstr(&stack, word(&stack, stack.sp + 16)), b"a b");
        assert_eq!(word(&stack, stack.sp + 24), 0, "argv ends in NULL");
        assert_eq!(cstr(&stack, word(&stack, stack.sp + 32)), b"HOME=/root");
        assert_eq!(word(&stack, stack.sp + 40), 0, "envp ends in NULL");

        let keys: Vec<u64> = stack.auxv.iter().map(|&(k, _)| k).collect();
        assert_eq!(
            keys,
            vec![
                AT_PAGESZ,
                AT_SECURE,
                AT_RANDOM,
                AT_EXECFN,
                AT_PLATFORM,
                AT_NULL
            ]
        );
        assert_eq!(stack.auxv_addr, stack.sp + 48);
        assert_eq!(word(&stack, stack.auxv_addr), AT_PAGESZ);

        let value = |key| stack.auxv.iter().find(|&&(k, _)| k == key).unwrap().1;
        assert_eq!(cstr(&stack, value(AT_EXECFN)), b"/bin/prog");
        assert_eq!(cstr(&stack, value(AT_PLATFORM)), b"aarch64");
        let random = (value(AT_RANDOM) - stack.sp) as usize;
        assert_eq!(&stack.bytes[random..random + 16], &[7; 16]);
        assert_eq!(cstr(&stack, stack.args.start), b"prog");
        assert_eq!(stack.env.end - stack.env.start, 11);
    }

    #[test]
    fn empty_argv_still_has_terminators() {
        let stack = build(0x8000_0000, &[], &[], b"x", &[], [0; 16]);
        assert_eq!(word(&stack, stack.sp), 0);
        assert_eq!(word(&stack, stack.sp + 8), 0);
        assert_eq!(word(&stack, stack.sp + 16), 0);
        assert_eq!(stack.auxv_addr, stack.sp + 24);
    }
}
