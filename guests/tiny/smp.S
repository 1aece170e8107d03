/* smp: brings up every CPU the way an operating system does.
 * The BSP finds the CPUs in the MP table (checking both checksums, as Linux does), prints
 * "cpu <id> up" for itself, then starts each AP with INIT + SIPI + SIPI through its LAPIC's
 * ICR. Each AP runs a real-mode trampoline (copied to TRAMPOLINE), switches to protected
 * mode and then long mode on the monitor's page tables, takes its own stack and prints
 * "cpu <id> up" under a spinlock. The BSP waits (bounded, by TSC) and prints
 * "all <N> cpus up" or "timeout: only <K> of <N> cpus up", then powers off.
 */
#include "tiny.h"

#define TRAMPOLINE 0x8000       /* free: boot_params end at 0x8000, page tables start at 0x9000 */
#define SIPI_VECTOR (TRAMPOLINE >> 12)
#define MONITOR_PML4 0x9000
#define MAX_CPUS 64
#define AP_STACK_SIZE 0x1000
#define MSR_EFER 0xC0000080
#define EFER_LME 0x100
#define ICR_INIT_ASSERT 0x4500  /* INIT, level assert */
#define ICR_STARTUP 0x4600      /* STARTUP; vector in bits 7:0 */
#define ICR_BUSY 0x1000         /* delivery status */
/* Bounds, in TSC cycles (about 1-3 s per 5e9 on anything this runs on). */
#define AP_START_BUDGET 10000000000
#define ALL_UP_BUDGET 30000000000

  .text
  .globl guest_main
guest_main:
  push %rbx
  push %r12
  push %r13
  push %r14
  push %r15

  /* 1. The MP floating pointer structure and its configuration table. */
  call find_mp_floating
  test %rax, %rax
  jnz 1f
  PRINT("no MP floating pointer found\n")
  jmp power_off
1:
  mov %rax, %rbx
  mov %rbx, %rdi
  mov $16, %esi
  call checksum
  test %al, %al
  jz 2f
  PRINT("MP floating pointer checksum bad\n")
  jmp power_off
2:
  mov 4(%rbx), %r12d      /* physical address of the configuration table */
  test %r12d, %r12d
  jnz 3f
  PRINT("MP default configurations are not supported\n")
  jmp power_off
3:
  cmpl $0x504D4350, (%r12) /* "PCMP" */
  je 4f
  PRINT("MP configuration table has no PCMP signature\n")
  jmp power_off
4:
  mov %r12, %rdi
  movzwl 4(%r12), %esi
  call checksum
  test %al, %al
  jz 5f
  PRINT("MP configuration table checksum bad\n")
  jmp power_off
5:
  /* 2. Processor entries (type 0, 20 bytes, flags bit 0 = enabled); others are 8 bytes. */
  movzwl 0x22(%r12), %r13d /* entry count */
  lea 0x2C(%r12), %r14     /* first entry */
  movzwl 4(%r12), %eax
  lea (%r12,%rax), %r15    /* end of the base table */
  xor %ebx, %ebx           /* enabled CPUs */
6:
  test %r13d, %r13d
  jz 9f
  cmp %r15, %r14
  jae 9f
  movzbl (%r14), %eax
  test %eax, %eax
  jnz 8f
  testb $1, 3(%r14)
  jz 7f
  cmp $MAX_CPUS, %ebx
  jae 7f
  movzbl 1(%r14), %eax
  lea apic_ids(%rip), %rcx
  mov %al, (%rcx,%rbx)
  inc %ebx
7:
  add $20, %r14
  dec %r13d
  jmp 6b
8:
  cmp $4, %eax
  ja 9f                    /* unknown entry type: its length is unknown, stop */
  add $8, %r14
  dec %r13d
  jmp 6b
9:
  PRINT("mp table: ")
  mov %rbx, %rdi
  call put_dec
  PRINT(" cpus\n")
  test %ebx, %ebx
  jnz 10f
  PRINT("MP table lists no enabled processor\n")
  jmp power_off
10:

  /* 3. The BSP: its APIC id, its LAPIC software-enabled (SVR), and it counts itself. */
  mov $LAPIC_BASE, %r12d
  mov LAPIC_ID(%r12), %r13d
  shr $24, %r13d
  mov LAPIC_SVR(%r12), %eax
  or $0x1FF, %eax
  mov %eax, LAPIC_SVR(%r12)
  mov %r13d, %edi
  call report_up

  /* 4. The trampoline, then each AP in turn. */
  lea tramp_start(%rip), %rsi
  mov $TRAMPOLINE, %edi
  mov $(tramp_end - tramp_start), %ecx
  rep movsb

  xor %r14d, %r14d
11:
  cmp %ebx, %r14d
  jae 13f
  lea apic_ids(%rip), %rcx
  movzbl (%rcx,%r14), %edi
  cmp %r13d, %edi
  je 12f
  mov started(%rip), %r15d
  call start_ap
  lea started(%rip), %rdi
  lea 1(%r15), %esi
  movabs $AP_START_BUDGET, %rdx
  call wait_at_least
  cmp %r15d, %eax
  ja 12f
  call lock_acquire
  PRINT("cpu ")
  lea apic_ids(%rip), %rcx
  movzbl (%rcx,%r14), %edi
  call put_dec
  PRINT(" did not start\n")
  call lock_release
12:
  inc %r14d
  jmp 11b
13:
  /* 5. Everyone (the BSP included) must have reported. */
  lea up(%rip), %rdi
  mov %ebx, %esi
  movabs $ALL_UP_BUDGET, %rdx
  call wait_at_least
  cmp %ebx, %eax
  jb 14f
  call lock_acquire
  PRINT("all ")
  mov %rbx, %rdi
  call put_dec
  PRINT(" cpus up\n")
  call lock_release
  jmp power_off
14:
  mov %eax, %r15d
  call lock_acquire
  PRINT("timeout: only ")
  mov %r15, %rdi
  call put_dec
  PRINT(" of ")
  mov %rbx, %rdi
  call put_dec
  PRINT(" cpus up\n")
  call lock_release
  jmp power_off

/* find_mp_floating() -> %rax: "_MP_" on a 16-byte boundary in the EBDA's first KiB or in
 * 0xE0000..0xFFFFF (MP spec 1.4 §4), or 0. */
find_mp_floating:
  mov $0x9FC00, %eax
  mov $0xA0000, %ecx
  call 1f
  test %rax, %rax
  jnz 3f
  mov $0xE0000, %eax
  mov $0x100000, %ecx
1:
  cmpl $0x5F504D5F, (%rax)
  je 3f
  add $16, %rax
  cmp %rcx, %rax
  jb 1b
  xor %eax, %eax
3:
  ret

/* checksum(%rdi = address, %rsi = length) -> %al: the byte sum (0 when valid). */
checksum:
  xor %eax, %eax
  test %rsi, %rsi
  jz 2f
1:
  add (%rdi), %al
  inc %rdi
  dec %rsi
  jnz 1b
2:
  ret

/* start_ap(%edi = APIC id): INIT, SIPI, SIPI (Intel SDM vol. 3 §8.4.4.1). Timing is not
 * critical under KVM; the delays only keep the order plain. */
start_ap:
  push %rbx
  mov %edi, %ebx
  shl $24, %ebx
  mov $ICR_INIT_ASSERT, %esi
  call send_ipi
  mov $100000, %edi
  call delay
  mov $(ICR_STARTUP | SIPI_VECTOR), %esi
  call send_ipi
  mov $20000, %edi
  call delay
  mov $(ICR_STARTUP | SIPI_VECTOR), %esi
  call send_ipi
  pop %rbx
  ret

/* send_ipi(%ebx = ICR high, %esi = ICR low): write the ICR and wait (bounded by the TSC,
 * ICR_BUDGET cycles, not by a number of reads: each is a VM exit) for delivery. */
#define ICR_BUDGET 1000000000
send_ipi:
  mov $LAPIC_BASE, %ecx
  mov %ebx, LAPIC_ICR_HIGH(%rcx)
  mov %esi, LAPIC_ICR_LOW(%rcx)
  call read_tsc
  mov $ICR_BUDGET, %r8d
  add %rax, %r8           /* deadline */
1:
  testl $ICR_BUSY, LAPIC_ICR_LOW(%rcx)
  jz 2f
  pause
  call read_tsc
  cmp %r8, %rax
  jb 1b
2:
  ret

/* wait_at_least(%rdi = &counter, %esi = target, %rdx = budget in TSC cycles) -> %eax: the
 * counter once it reaches the target, or its value when the budget ran out. */
wait_at_least:
  mov %rdx, %r8
  rdtsc
  shl $32, %rdx
  or %rdx, %rax
  mov %rax, %r9
1:
  mov (%rdi), %eax
  cmp %esi, %eax
  jae 2f
  pause
  rdtsc
  shl $32, %rdx
  or %rdx, %rax
  sub %r9, %rax
  cmp %r8, %rax
  jb 1b
  mov (%rdi), %eax
2:
  ret

lock_acquire:
1:
  mov $1, %eax
  xchg %eax, print_lock(%rip)
  test %eax, %eax
  jz 3f
2:
  pause
  cmpl $0, print_lock(%rip)
  jne 2b
  jmp 1b
3:
  ret

lock_release:
  movl $0, print_lock(%rip)
  ret

/* report_up(%edi = APIC id): print "cpu <id> up" and count this CPU. */
report_up:
  push %rbx
  mov %edi, %ebx
  call lock_acquire
  PRINT("cpu ")
  mov %rbx, %rdi
  call put_dec
  PRINT(" up\n")
  call lock_release
  lock incl up(%rip)
  pop %rbx
  ret

/* The AP in long mode, on the trampoline's GDT (same selectors as the monitor's). */
ap_main:
  mov $1, %eax
  lock xadd %eax, next_stack(%rip)
  cmp $MAX_CPUS, %eax
  jae halt_forever         /* more CPUs than stacks: stay out of the way */
  inc %eax
  shl $12, %rax            /* AP_STACK_SIZE */
  lea ap_stacks(%rip), %rsp
  add %rax, %rsp
  lock incl started(%rip)
  mov $LAPIC_BASE, %ecx
  mov LAPIC_ID(%rcx), %edi
  shr $24, %edi
  call report_up
  jmp halt_forever

/* The trampoline: position-dependent on TRAMPOLINE only (every absolute address below is
 * TRAMPOLINE + an offset within it). Entered in real mode at CS = SIPI_VECTOR << 8, IP = 0. */
  .balign 16
tramp_start:
  .code16
  cli
  cld
  mov %cs, %ax
  mov %ax, %ds
  lgdtl tramp_gdtr - tramp_start
  mov $0x00000031, %eax    /* PE | ET | NE; clears CD/NW left by INIT */
  mov %eax, %cr0
  ljmpl $0x18, $(TRAMPOLINE + tramp_protected - tramp_start)
  .code32
tramp_protected:
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov %ax, %fs
  mov %ax, %gs
  mov %cr4, %eax
  or $0x20, %eax           /* PAE */
  mov %eax, %cr4
  mov $MONITOR_PML4, %eax  /* the monitor's identity map */
  mov %eax, %cr3
  mov $MSR_EFER, %ecx
  rdmsr
  or $EFER_LME, %eax
  wrmsr
  mov $0x80000031, %eax    /* PG | PE | ET | NE */
  mov %eax, %cr0
  ljmp $0x08, $(TRAMPOLINE + tramp_long - tramp_start)
  .code64
tramp_long:
  movabs $ap_main, %rax
  jmp *%rax
  .balign 8
tramp_gdt:
  .quad 0                     /* 0x00 null */
  .quad 0x00AF9B000000FFFF    /* 0x08 64-bit code, as the monitor's */
  .quad 0x00CF93000000FFFF    /* 0x10 flat data, as the monitor's */
  .quad 0x00CF9B000000FFFF    /* 0x18 32-bit code, for the trampoline */
tramp_gdt_end:
tramp_gdtr:
  .word tramp_gdt_end - tramp_gdt - 1
  .long TRAMPOLINE + tramp_gdt - tramp_start
tramp_end:

  .data
  .balign 4
started:
  .long 0
up:
  .long 0
print_lock:
  .long 0
next_stack:
  .long 0
apic_ids:
  .fill MAX_CPUS, 1, 0

  .bss
  .balign 4096
ap_stacks:
  .skip MAX_CPUS * AP_STACK_SIZE + AP_STACK_SIZE
