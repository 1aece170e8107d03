/* hostile: accesses nothing handles, and accesses that straddle or abuse handled ranges.
 * The monitor must count/log them and keep running (the guest is hostile: never fatal, never
 * out of bounds). Prints "survived unhandled accesses" afterwards and resets via 0xcf9.
 *
 * Order matters for what the test can check: the monitor logs each (address, direction) once
 * and stops logging new ones after 256 of them (a hostile guest can probe every port). The
 * few targeted accesses come first, so they are logged; the sweep of 0x100-0x1ff (512
 * distinct port accesses) comes last and runs into that bound. */
#include "tiny.h"

  .text
  .globl guest_main
guest_main:
  push %rbx

  /* 1. MMIO nobody backs: the PCI hole, just below the IOAPIC, and above RAM (the test runs
   * this guest with 64 MiB). Each with 1-, 4- and 8-byte reads and writes. */
  mov $0xD0000000, %rdi
  call poke
  mov $0xFEBFF000, %rdi
  call poke
  mov $0x40000000, %rdi
  call poke

  /* 2. Word and dword accesses: POST port, PCI config data (with and without a garbage
   * config address), and a dword read/write that starts inside COM1 (0x3fe) and runs past its
   * end: a bus must not hand a device an offset or size outside its range. */
  mov $0x80, %dx
  mov $0x5A, %al
  out %al, %dx
  in %dx, %al
  mov $0xCFC, %dx
  mov $0xDEADBEEF, %eax
  out %eax, %dx
  in %dx, %eax
  mov $0xCF8, %dx
  mov $0x80FFFFFC, %eax   /* bus 255, device 31, function 7, register 0xfc */
  out %eax, %dx
  mov $0xCFC, %dx
  in %dx, %eax
  mov $0xCFE, %dx
  in %dx, %ax
  out %ax, %dx
  mov $0x3FE, %dx
  in %dx, %eax
  xor %eax, %eax
  out %eax, %dx

  /* 3. CMOS index with the NMI-disable bit and the last index; then back to a sane index. */
  mov $0xFF, %al
  out %al, $0x70
  in $0x71, %al
  mov $0x7F, %al
  out %al, $0x70
  in $0x71, %al
  mov $0x0D, %al
  out %al, $0x70

  /* 4. Every port in 0x100..0x1ff, written then read, byte-sized. */
  mov $0x100, %ebx
1:
  mov %bx, %dx
  mov $0xA5, %al
  out %al, %dx
  in %dx, %al
  inc %ebx
  cmp $0x200, %ebx
  jb 1b
  /* ...and 0x100..0x10f a second time: the monitor logs each port once, not each access. */
  mov $0x100, %ebx
1:
  mov %bx, %dx
  mov $0x5A, %al
  out %al, %dx
  in %dx, %al
  inc %ebx
  cmp $0x110, %ebx
  jb 1b

  PRINT("survived unhandled accesses\n")
  pop %rbx
  jmp reset_cf9

/* poke(%rdi = address): write and read 1, 4 and 8 bytes. */
poke:
  movb $0x5A, (%rdi)
  movb (%rdi), %al
  movl $0x12345678, 4(%rdi)
  movl 4(%rdi), %eax
  movabs $0x0123456789ABCDEF, %rax
  mov %rax, 8(%rdi)
  mov 8(%rdi), %rax
  ret
