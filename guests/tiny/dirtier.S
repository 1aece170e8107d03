/* dirtier: a guest that writes memory faster than a migration link carries it. Forever, pass
 * after pass, it writes the pass number into one qword of every page of 16-32 MiB (4096 pages),
 * after checking that the page still holds the number of the pass before: a page that lost its
 * last write (a migration that dropped a dirty page) stops it with `dirty N BAD`. Every 64th
 * pass it prints `dirty N ok`. Under KVM's dirty logging every pass dirties all 16 MiB again, so
 * a live migration with a small downtime limit never converges (and must be cancelled by its
 * timeout with the guest running on). Needs at least 32 MiB of RAM. */
#include "tiny.h"

#define AREA_START 0x1000000
#define AREA_END 0x2000000

  .text
  .globl guest_main
guest_main:
  PRINT("dirtier ready\n")
  xor %r12d, %r12d          /* this pass's number */
pass:
  mov %r12, %r13            /* the number every page holds now */
  inc %r12
  mov $AREA_START, %rdi
1:
  cmp %r13, (%rdi)
  jne bad
  mov %r12, (%rdi)
  add $4096, %rdi
  cmp $AREA_END, %rdi
  jb 1b
  test $63, %r12
  jnz pass
  PRINT("dirty ")
  mov %r12, %rdi
  call put_dec
  PRINT(" ok\n")
  jmp pass
bad:
  PRINT("dirty ")
  mov %r12, %rdi
  call put_dec
  PRINT(" BAD\n")
  jmp power_off
