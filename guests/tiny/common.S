/* Runtime shared by the tiny guests: entry, COM1 output, number formatting, and the ways a
 * guest ends (power off, reset, halt). Calling convention: System V (argument in %rdi,
 * %rbx/%rbp/%r12-%r15 preserved); no SSE, no red zone reliance, no interrupts.
 */
#include "tiny.h"

  .section .text.entry, "ax"
  .code64
  .globl _start
_start:
  /* The monitor leaves RSP unspecified: use our own stack. */
  cli
  cld
  lea boot_stack_top(%rip), %rsp
  xor %ebp, %ebp
  call guest_main
  PRINT("guest_main returned\n")
  jmp halt_forever

  .text

/* putc(%dil): wait (bounded by the TSC: PUTC_BUDGET cycles, 20-100 ms) for THR empty, then
 * write one byte to COM1. A monitor that never sets THRE still gets the byte, so a broken LSR
 * shows up as slow output, not as a hang. Clobbers %rax, %rcx, %rdx. */
#define PUTC_BUDGET 100000000
  .globl putc
putc:
  rdtsc
  shl $32, %rdx
  or %rdx, %rax
  mov $PUTC_BUDGET, %ecx
  add %rax, %rcx          /* deadline */
1:
  mov $COM1_LSR, %dx
  in %dx, %al
  test $LSR_THRE, %al
  jnz 2f
  pause
  rdtsc
  shl $32, %rdx
  or %rdx, %rax
  cmp %rcx, %rax
  jb 1b
2:
  mov %edi, %eax
  mov $COM1_THR, %dx
  out %al, %dx
  ret

/* puts(%rdi): write a NUL-terminated string. */
  .globl puts
puts:
  push %rbx
  mov %rdi, %rbx
1:
  movzbl (%rbx), %edi
  test %edi, %edi
  jz 2f
  call putc
  inc %rbx
  jmp 1b
2:
  pop %rbx
  ret

/* put_dec(%rdi): unsigned decimal. */
  .globl put_dec
put_dec:
  push %rbx
  sub $32, %rsp
  mov %rdi, %rax
  lea 31(%rsp), %rbx
  movb $0, (%rbx)
  mov $10, %ecx
1:
  xor %edx, %edx
  div %rcx
  add $'0', %dl
  dec %rbx
  mov %dl, (%rbx)
  test %rax, %rax
  jnz 1b
  mov %rbx, %rdi
  call puts
  add $32, %rsp
  pop %rbx
  ret

/* put_dec2(%rdi): unsigned decimal, at least two digits. */
  .globl put_dec2
put_dec2:
  cmp $10, %rdi
  jae put_dec
  push %rdi
  mov $'0', %edi
  call putc
  pop %rdi
  jmp put_dec

/* put_hex2(%dil): two lower-case hex digits. */
  .globl put_hex2
put_hex2:
  push %rbx
  movzbl %dil, %ebx
  mov %ebx, %edi
  shr $4, %edi
  call hex_digit
  mov %ebx, %edi
  and $0xF, %edi
  call hex_digit
  pop %rbx
  ret
hex_digit:
  lea hex_digits(%rip), %rax
  movzbl (%rax,%rdi), %edi
  jmp putc

/* put_hex(%rdi): 0x-prefixed hex, no leading zeros. */
  .globl put_hex
put_hex:
  push %rbx
  push %r12
  mov %rdi, %rbx
  mov $'0', %edi
  call putc
  mov $'x', %edi
  call putc
  mov $60, %r12d          /* shift of the current nibble */
1:
  mov %rbx, %rax
  mov %r12d, %ecx
  shr %cl, %rax
  test %rax, %rax
  jnz 2f
  test %r12d, %r12d
  jz 2f
  sub $4, %r12d
  jmp 1b
2:
  mov %rbx, %rdi
  mov %r12d, %ecx
  shr %cl, %rdi
  and $0xF, %edi
  call hex_digit
  sub $4, %r12d
  jns 2b
  pop %r12
  pop %rbx
  ret

/* read_tsc() -> %rax: the 64-bit time-stamp counter (clobbers %rdx). Waits that poll a device
 * are bounded by it rather than by iteration counts: every poll of an emulated port is a VM
 * exit, which costs ~1 us on hardware KVM but ~75 us (in-kernel devices) to ~150 us (devices
 * in the monitor) in the nested lab, so an iteration bound that is generous on one is minutes
 * on the other. The TSC runs at 1-5 GHz on anything these guests run on (~2.1 GHz in the lab). */
  .globl read_tsc
read_tsc:
  rdtsc
  shl $32, %rdx
  or %rdx, %rax
  ret

/* boot_mark(%dil): write a code to the boot-timing port. */
  .globl boot_mark
boot_mark:
  mov %edi, %eax
  mov $BOOT_TIMING_PORT, %dx
  out %al, %dx
  ret

/* delay(%rdi): spin for %rdi iterations. */
  .globl delay
delay:
  test %rdi, %rdi
  jz 2f
1:
  pause
  dec %rdi
  jnz 1b
2:
  ret

/* The ends. Each reports on the console if the VM is still running afterwards, so a monitor
 * that ignores the request shows up as a clear message (and a test timeout), not silence. */
  .globl power_off
power_off:
  mov $ACPI_SLEEP_S5, %al
  mov $ACPI_SLEEP_CONTROL_PORT, %dx
  out %al, %dx
  mov $1000000, %edi
  call delay
  PRINT("power off through port 0x600 did not stop the VM\n")
  jmp halt_forever

  .globl reset_cf9
reset_cf9:
  mov $RESET_CONTROL_VALUE, %al
  mov $RESET_CONTROL_PORT, %dx
  out %al, %dx
  mov $1000000, %edi
  call delay
  PRINT("reset through port 0xcf9 did not stop the VM\n")
  jmp halt_forever

  .globl reset_i8042
reset_i8042:
  /* As Linux does: wait (bounded by the TSC, 0.1-0.5 s) for the controller's input buffer
   * to drain first. */
  call read_tsc
  mov $500000000, %ecx
  add %rax, %rcx          /* deadline */
1:
  in $I8042_COMMAND, %al
  test $0x02, %al
  jz 2f
  pause
  call read_tsc
  cmp %rcx, %rax
  jb 1b
2:
  mov $I8042_RESET, %al
  out %al, $I8042_COMMAND
  mov $1000000, %edi
  call delay
  PRINT("reset through the i8042 did not stop the VM\n")
  jmp halt_forever

  .globl halt_forever
halt_forever:
  cli
  hlt
  jmp halt_forever

  .section .rodata
hex_digits:
  .ascii "0123456789abcdef"

  .bss
  .balign 16
boot_stack:
  .skip STACK_SIZE
boot_stack_top:
