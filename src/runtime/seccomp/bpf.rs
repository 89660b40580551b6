//! From syscall rules to a classic BPF program for seccomp, and an
//! interpreter of such programs (so tests can ask what a filter answers
//! without installing it).
//!
//! The program: refuse a foreign architecture (ENOSYS: an i386 binary on
//! x86_64 sees clean errors, not a killed process) and x32 syscalls; find
//! the syscall's number in a binary search over the ranges of numbers that
//! share an answer (most of a profile allows runs of neighbours, so there
//! are far fewer ranges than syscalls); then try its rules in order, each a
//! list of argument checks with an action; the first rule whose checks all
//! hold answers, and the filter's default answers the rest.
//!
//! The kernel converts and JIT-compiles the program when the container
//! installs it, in the container's start: docker's profile took 712
//! instructions as a tree of syscalls (0.2-0.26 ms to install) and takes
//! 253 as ranges (0.11-0.16 ms).

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// What the filter answers for a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Fail with this errno, without running the syscall; `Errno(0)` makes
    /// it report success (root emulation).
    Errno(u16),
    KillProcess,
    KillThread,
    Trap,
    Log,
}

impl Action {
    fn ret_value(self) -> u32 {
        match self {
            Action::Allow => SECCOMP_RET_ALLOW,
            Action::Errno(errno) => SECCOMP_RET_ERRNO | u32::from(errno),
            Action::KillProcess => SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => SECCOMP_RET_KILL_THREAD,
            Action::Trap => SECCOMP_RET_TRAP,
            Action::Log => SECCOMP_RET_LOG,
        }
    }
}

/// How an argument is compared with a value (libseccomp's operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `arg & mask == value`.
    MaskedEq(u64),
}

/// One condition on argument `index` (0-5), compared as a 64-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCheck {
    pub index: u8,
    pub op: Op,
    pub value: u64,
}

/// `action` for syscall `nr` when every check holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub nr: u32,
    pub checks: Vec<ArgCheck>,
    pub action: Action,
}

/// A whole filter: its rules, in the order they are tried, and what
/// answers every syscall they do not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub default: Action,
    pub rules: Vec<Rule>,
}

/// One instruction as the kernel takes it (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Instruction codes (linux/bpf_common.h): class | size or op | source.
/// BPF_LD | BPF_W | BPF_ABS: load a word of `seccomp_data`.
const BPF_LD_W_ABS: u16 = 0x20;
/// BPF_ALU | BPF_AND | BPF_K.
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
/// BPF_JMP | BPF_JA: jump ahead by k.
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
/// BPF_RET | BPF_K: return k.
const BPF_RET_K: u16 = 0x06;

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_KILL_THREAD: u32 = 0;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

/// The offsets of `struct seccomp_data`'s fields.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
fn arg_offset(index: u8, high: bool) -> u32 {
    // Little-endian (x86_64 and aarch64): the low word comes first.
    16 + 8 * u32::from(index) + if high { 4 } else { 0 }
}

/// This machine's architecture as seccomp names it.
#[cfg(target_arch = "x86_64")]
pub const NATIVE_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
pub const NATIVE_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

/// x32 syscalls come in as x86_64 ones with this bit set.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const ENOSYS: u16 = 38;
/// The kernel takes at most this many instructions.
const MAX_INSTRUCTIONS: usize = 4096;
/// How far ahead a conditional jump reaches.
const MAX_JUMP: usize = 255;

/// A jump target, resolved once the program is laid out.
type Label = usize;

/// Instructions with symbolic jump targets.
#[derive(Debug, Clone, Copy)]
enum Item {
    Label(Label),
    Stmt {
        code: u16,
        k: u32,
    },
    /// A conditional jump: to `yes` when the condition holds, else `no`.
    Jump {
        code: u16,
        k: u32,
        yes: Label,
        no: Label,
    },
    Always(Label),
}

#[derive(Default)]
struct Assembler {
    items: Vec<Item>,
    labels: usize,
}

impl Assembler {
    fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }

    fn place(&mut self, label: Label) {
        self.items.push(Item::Label(label));
    }

    fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt {
            code: BPF_LD_W_ABS,
            k: offset,
        });
    }

    fn and(&mut self, mask: u32) {
        self.items.push(Item::Stmt {
            code: BPF_ALU_AND_K,
            k: mask,
        });
    }

    fn ret(&mut self, action: Action) {
        self.items.push(Item::Stmt {
            code: BPF_RET_K,
            k: action.ret_value(),
        });
    }

    fn jump(&mut self, code: u16, k: u32, yes: Label, no: Label) {
        self.items.push(Item::Jump { code, k, yes, no });
    }

    fn always(&mut self, to: Label) {
        self.items.push(Item::Always(to));
    }

    /// Lays the program out: labels take no room; conditional jumps reach
    /// at most 255 instructions ahead, which the compiler below keeps to
    /// by jumping far only with `Always`.
    fn finish(self) -> Result<Vec<Instruction>> {
        let mut at = vec![usize::MAX; self.labels];
        let mut position = 0;
        for item in &self.items {
            match item {
                Item::Label(label) => at[*label] = position,
                _ => position += 1,
            }
        }
        if position > MAX_INSTRUCTIONS {
            bail!("the seccomp filter needs {position} instructions; the kernel takes at most {MAX_INSTRUCTIONS}");
        }
        let mut program = Vec::with_capacity(position);
        for item in self.items {
            let here = program.len();
            let offset = |label: Label| -> Result<usize> {
                match at[label].checked_sub(here + 1) {
                    Some(offset) => Ok(offset),
                    None => bail!("a seccomp filter jump goes backwards (a compiler bug)"),
                }
            };
            let instruction = match item {
                Item::Label(_) => continue,
                Item::Stmt { code, k } => Instruction {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Item::Jump { code, k, yes, no } => {
                    let (jt, jf) = (offset(yes)?, offset(no)?);
                    if jt > 255 || jf > 255 {
                        bail!("a seccomp filter jump is too far (a compiler bug)");
                    }
                    Instruction {
                        code,
                        jt: jt as u8,
                        jf: jf as u8,
                        k,
                    }
                }
                Item::Always(to) => Instruction {
                    code: BPF_JMP_JA,
                    jt: 0,
                    jf: 0,
                    k: offset(to)? as u32,
                },
            };
            program.push(instruction);
        }
        Ok(program)
    }
}

/// Compiles `filter` into a program for this machine's architecture.
pub fn compile(filter: &Filter) -> Result<Vec<Instruction>> {
    let mut asm = Assembler::default();
    let native = asm.label();
    let refuse = asm.label();
    asm.load(ARCH_OFFSET);
    asm.jump(BPF_JMP_JEQ_K, NATIVE_ARCH, native, refuse);
    asm.place(refuse);
    asm.ret(Action::Errno(ENOSYS));
    asm.place(native);
    asm.load(NR_OFFSET);
    #[cfg(target_arch = "x86_64")]
    {
        let x32 = asm.label();
        let x86_64 = asm.label();
        asm.jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, x32, x86_64);
        asm.place(x32);
        asm.ret(Action::Errno(ENOSYS));
        asm.place(x86_64);
    }

    let mut by_syscall: BTreeMap<u32, Vec<&Rule>> = BTreeMap::new();
    for rule in &filter.rules {
        by_syscall.entry(rule.nr).or_default().push(rule);
    }
    // A syscall whose first rule has no checks is answered by it whatever
    // its arguments (the rules after it never get a turn): it needs no
    // body, and it can share a range with its neighbours.
    let mut bodies = vec![];
    let mut ranges = Ranges::new(filter.default);
    for (nr, rules) in &by_syscall {
        let target = match rules.as_slice() {
            [first, ..] if first.checks.is_empty() => Target::Answer(first.action),
            _ => {
                let body = asm.label();
                bodies.push((body, rules));
                Target::Body(body)
            }
        };
        ranges.set(*nr, target);
    }
    dispatch(&mut asm, &ranges.0);
    for (body, rules) in bodies {
        asm.place(body);
        for rule in rules.iter() {
            rule_body(&mut asm, rule);
        }
        asm.ret(filter.default);
    }
    asm.finish()
}

/// Where the search sends a syscall.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Answer(Action),
    /// Its rules, placed after the search.
    Body(Label),
}

/// Every syscall number's target, as ranges: each starts at its number and
/// runs up to the next one's start; the first starts at 0, the last runs to
/// the end. Neighbours never share a target.
struct Ranges(Vec<(u32, Target)>);

impl Ranges {
    fn new(default: Action) -> Ranges {
        Ranges(vec![(0, Target::Answer(default))])
    }

    /// Gives `nr` its `target`; numbers must come in rising order, each
    /// above the last one set.
    fn set(&mut self, nr: u32, target: Target) {
        let (_, after) = *self.0.last().expect("ranges start with one");
        self.start(nr, target);
        if let Some(next) = nr.checked_add(1) {
            self.start(next, after);
        }
    }

    /// A range from `at` with `target`, merged with the one before when
    /// they agree; one starting at `at` already is replaced.
    fn start(&mut self, at: u32, target: Target) {
        if self.0.last().is_some_and(|(start, _)| *start == at) {
            self.0.pop();
        }
        if self.0.last().map(|(_, t)| *t) != Some(target) {
            self.0.push((at, target));
        }
    }
}

/// A binary search over `ranges` (see `Ranges`), with the number in the
/// accumulator: each node asks whether the number is at or above the upper
/// half's first start; each leaf answers, or jumps to its syscall's rules.
fn dispatch(asm: &mut Assembler, ranges: &[(u32, Target)]) {
    if let [(_, target)] = ranges {
        match target {
            Target::Answer(action) => asm.ret(*action),
            Target::Body(body) => asm.always(*body),
        }
        return;
    }
    let (low, high) = ranges.split_at(ranges.len() / 2);
    let to_low = asm.label();
    let high_half = asm.label();
    if search_size(low) <= MAX_JUMP {
        asm.jump(BPF_JMP_JGE_K, high[0].0, high_half, to_low);
    } else {
        let to_high = asm.label();
        asm.jump(BPF_JMP_JGE_K, high[0].0, to_high, to_low);
        asm.place(to_high);
        asm.always(high_half);
    }
    asm.place(to_low);
    dispatch(asm, low);
    asm.place(high_half);
    dispatch(asm, high);
}

/// How many instructions `dispatch` lays out for `ranges`.
fn search_size(ranges: &[(u32, Target)]) -> usize {
    if ranges.len() <= 1 {
        return ranges.len();
    }
    let (low, high) = ranges.split_at(ranges.len() / 2);
    let low_size = search_size(low);
    let far = usize::from(low_size > MAX_JUMP);
    1 + far + low_size + search_size(high)
}

/// One rule: its checks in a row, each jumping to the next rule when it
/// fails, then the action.
fn rule_body(asm: &mut Assembler, rule: &Rule) {
    let next_rule = asm.label();
    for check in &rule.checks {
        let pass = asm.label();
        check_arg(asm, check, pass, next_rule);
        asm.place(pass);
    }
    asm.ret(rule.action);
    asm.place(next_rule);
}

/// Compares a 64-bit argument with a value, as two 32-bit halves: the high
/// word decides unless it is equal, then the low word does.
fn check_arg(asm: &mut Assembler, check: &ArgCheck, pass: Label, fail: Label) {
    let (value_high, value_low) = ((check.value >> 32) as u32, check.value as u32);
    let high = arg_offset(check.index, true);
    let low = arg_offset(check.index, false);
    let low_word = asm.label();
    match check.op {
        Op::Eq | Op::Ne => {
            let (equal, unequal) = match check.op {
                Op::Eq => (pass, fail),
                _ => (fail, pass),
            };
            asm.load(high);
            asm.jump(BPF_JMP_JEQ_K, value_high, low_word, unequal);
            asm.place(low_word);
            asm.load(low);
            asm.jump(BPF_JMP_JEQ_K, value_low, equal, unequal);
        }
        Op::MaskedEq(mask) => {
            asm.load(high);
            asm.and((mask >> 32) as u32);
            asm.jump(BPF_JMP_JEQ_K, value_high, low_word, fail);
            asm.place(low_word);
            asm.load(low);
            asm.and(mask as u32);
            asm.jump(BPF_JMP_JEQ_K, value_low, pass, fail);
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // Gt and Ge answer directly; Lt is "not Ge", Le is "not Gt".
            let (code, holds, fails) = match check.op {
                Op::Gt => (BPF_JMP_JGT_K, pass, fail),
                Op::Ge => (BPF_JMP_JGE_K, pass, fail),
                Op::Lt => (BPF_JMP_JGE_K, fail, pass),
                _ => (BPF_JMP_JGT_K, fail, pass),
            };
            let high_equal = asm.label();
            let high_not_greater = asm.label();
            asm.load(high);
            asm.jump(BPF_JMP_JGT_K, value_high, holds, high_not_greater);
            asm.place(high_not_greater);
            asm.jump(BPF_JMP_JEQ_K, value_high, high_equal, fails);
            asm.place(high_equal);
            asm.load(low);
            asm.jump(code, value_low, holds, fails);
        }
    }
}

/// What a syscall looks like to a filter (`struct seccomp_data`).
#[derive(Debug, Clone, Copy)]
pub struct SyscallData {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// Runs `program` on `data` as the kernel would; the value it returns.
pub fn run(program: &[Instruction], data: &SyscallData) -> Result<u32> {
    let word = |offset: u32| -> Result<u32> {
        Ok(match offset {
            NR_OFFSET => data.nr,
            ARCH_OFFSET => data.arch,
            16..=63 if offset % 4 == 0 => {
                let arg = data.args[(offset as usize - 16) / 8];
                match offset % 8 {
                    0 => arg as u32,
                    _ => (arg >> 32) as u32,
                }
            }
            _ => bail!("a load from offset {offset}"),
        })
    };
    let mut accumulator = 0u32;
    let mut pc = 0usize;
    while let Some(instruction) = program.get(pc) {
        let Instruction { code, jt, jf, k } = *instruction;
        pc += 1;
        match code {
            BPF_LD_W_ABS => accumulator = word(k)?,
            BPF_ALU_AND_K => accumulator &= k,
            BPF_JMP_JA => pc += k as usize,
            BPF_JMP_JEQ_K | BPF_JMP_JGT_K | BPF_JMP_JGE_K => {
                let holds = match code {
                    BPF_JMP_JEQ_K => accumulator == k,
                    BPF_JMP_JGT_K => accumulator > k,
                    _ => accumulator >= k,
                };
                pc += usize::from(if holds { jt } else { jf });
            }
            BPF_RET_K => return Ok(k),
            other => bail!("an instruction with code {other:#x}"),
        }
    }
    bail!("the program ran off its end")
}

/// The action a seccomp return value stands for.
pub fn action_of(value: u32) -> Action {
    match value & 0xffff_0000 {
        SECCOMP_RET_ALLOW => Action::Allow,
        SECCOMP_RET_ERRNO => Action::Errno((value & 0xffff) as u16),
        SECCOMP_RET_KILL_PROCESS => Action::KillProcess,
        SECCOMP_RET_TRAP => Action::Trap,
        SECCOMP_RET_LOG => Action::Log,
        _ => Action::KillThread,
    }
}

/// What `filter` answers for `data`, read straight from its rules: the
/// reference the compiled program is held to in tests.
#[cfg(test)]
pub fn answer_by_rules(filter: &Filter, data: &SyscallData) -> Action {
    if data.arch != NATIVE_ARCH {
        return Action::Errno(ENOSYS);
    }
    #[cfg(target_arch = "x86_64")]
    if data.nr >= X32_SYSCALL_BIT {
        return Action::Errno(ENOSYS);
    }
    let holds = |check: &ArgCheck| {
        let arg = data.args[usize::from(check.index)];
        match check.op {
            Op::Eq => arg == check.value,
            Op::Ne => arg != check.value,
            Op::Lt => arg < check.value,
            Op::Le => arg <= check.value,
            Op::Gt => arg > check.value,
            Op::Ge => arg >= check.value,
            Op::MaskedEq(mask) => arg & mask == check.value,
        }
    };
    filter
        .rules
        .iter()
        .find(|rule| rule.nr == data.nr && rule.checks.iter().all(holds))
        .map_or(filter.default, |rule| rule.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(program: &[Instruction], nr: u32, args: [u64; 6]) -> Action {
        let data = SyscallData {
            nr,
            arch: NATIVE_ARCH,
            args,
        };
        action_of(run(program, &data).unwrap())
    }

    fn rule(nr: u32, checks: Vec<ArgCheck>, action: Action) -> Rule {
        Rule { nr, checks, action }
    }

    fn check(index: u8, op: Op, value: u64) -> ArgCheck {
        ArgCheck { index, op, value }
    }

    #[test]
    fn the_first_rule_that_holds_answers_and_the_default_the_rest() {
        let filter = Filter {
            default: Action::Errno(1),
            rules: vec![
                rule(7, vec![check(0, Op::Eq, 5)], Action::Errno(0)),
                rule(7, vec![], Action::Allow),
                rule(
                    9,
                    vec![check(1, Op::MaskedEq(0xf000), 0x2000)],
                    Action::Allow,
                ),
            ],
        };
        let program = compile(&filter).unwrap();
        assert_eq!(call(&program, 7, [5, 0, 0, 0, 0, 0]), Action::Errno(0));
        assert_eq!(call(&program, 7, [6, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(call(&program, 9, [0, 0x21a4, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(call(&program, 9, [0, 0x11a4, 0, 0, 0, 0]), Action::Errno(1));
        assert_eq!(call(&program, 8, [0; 6]), Action::Errno(1));
    }

    #[test]
    fn comparisons_are_64_bit() {
        let big = 0x1_0000_0005u64;
        for (op, below, equal, above) in [
            (Op::Eq, false, true, false),
            (Op::Ne, true, false, true),
            (Op::Lt, true, false, false),
            (Op::Le, true, true, false),
            (Op::Gt, false, false, true),
            (Op::Ge, false, true, true),
        ] {
            let filter = Filter {
                default: Action::Errno(1),
                rules: vec![rule(3, vec![check(2, op, big)], Action::Allow)],
            };
            let program = compile(&filter).unwrap();
            for (arg, want) in [
                (big - 1, below),
                (5, below), // same low word, smaller high word
                (big, equal),
                (big + 1, above),
                (0x2_0000_0000, above),
            ] {
                let got = call(&program, 3, [0, 0, arg, 0, 0, 0]) == Action::Allow;
                assert_eq!(got, want, "{op:?} {arg:#x}");
            }
        }
    }

    #[test]
    fn many_syscalls_are_found_through_the_tree() {
        let rules: Vec<Rule> = (0..450)
            .map(|nr| rule(nr * 2, vec![], Action::Allow))
            .collect();
        let program = compile(&Filter {
            default: Action::Errno(1),
            rules,
        })
        .unwrap();
        for nr in 0..900 {
            let want = match nr % 2 {
                0 => Action::Allow,
                _ => Action::Errno(1),
            };
            assert_eq!(call(&program, nr, [0; 6]), want, "{nr}");
        }
    }

    #[test]
    fn neighbours_with_one_answer_share_a_range() {
        // 0-299 allowed but for 100 and 200 (rules of their own) and 150
        // (not listed): five ranges and two bodies, not 300 comparisons.
        let mut rules: Vec<Rule> = (0..300)
            .filter(|nr| ![100, 150, 200].contains(nr))
            .map(|nr| rule(nr, vec![], Action::Allow))
            .collect();
        rules.push(rule(100, vec![check(0, Op::Eq, 1)], Action::Allow));
        rules.push(rule(200, vec![], Action::Errno(0)));
        // Never reached: the rule above answers 200 whatever its arguments.
        rules.push(rule(200, vec![check(0, Op::Eq, 1)], Action::Allow));
        let filter = Filter {
            default: Action::Errno(1),
            rules,
        };
        let program = compile(&filter).unwrap();
        assert!(program.len() < 40, "{} instructions", program.len());
        for nr in 0..1000 {
            for arg in [0, 1] {
                let data = SyscallData {
                    nr,
                    arch: NATIVE_ARCH,
                    args: [arg, 0, 0, 0, 0, 0],
                };
                let got = action_of(run(&program, &data).unwrap());
                assert_eq!(got, answer_by_rules(&filter, &data), "{nr}({arg})");
            }
        }
    }

    #[test]
    fn a_search_too_big_for_one_jump_still_reaches_every_range() {
        // Numbers in pairs, a rule each: 600 ranges, whose upper halves lie
        // more than 255 instructions past the nodes near the root.
        let rules: Vec<Rule> = (0..600)
            .filter(|nr| nr % 2 == 0)
            .flat_map(|nr| {
                [
                    rule(nr, vec![check(1, Op::Eq, u64::from(nr))], Action::Allow),
                    rule(nr + 1, vec![], Action::Errno(nr as u16)),
                ]
            })
            .collect();
        let filter = Filter {
            default: Action::KillProcess,
            rules,
        };
        let program = compile(&filter).unwrap();
        for nr in 0..1000 {
            for arg in [0, 450, u64::from(nr)] {
                let data = SyscallData {
                    nr,
                    arch: NATIVE_ARCH,
                    args: [0, arg, 0, 0, 0, 0],
                };
                let got = action_of(run(&program, &data).unwrap());
                assert_eq!(got, answer_by_rules(&filter, &data), "{nr}({arg})");
            }
        }
    }

    #[test]
    fn a_foreign_architecture_is_refused_not_killed() {
        let program = compile(&Filter {
            default: Action::Allow,
            rules: vec![],
        })
        .unwrap();
        let i386 = SyscallData {
            nr: 1,
            arch: 0x4000_0003,
            args: [0; 6],
        };
        assert_eq!(
            action_of(run(&program, &i386).unwrap()),
            Action::Errno(ENOSYS)
        );
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            call(&program, X32_SYSCALL_BIT | 1, [0; 6]),
            Action::Errno(ENOSYS)
        );
    }
}
