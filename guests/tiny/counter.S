/* counter: a guest with state worth snapshotting. Fills a 4 KiB area with a pattern, then
 * forever (up to 100000) prints `count N ok` about ten times a second, N counted in %r12 and
 * mirrored in memory; before each line it checks the mirror and the area's checksum, and
 * prints `count N BAD` if either disagrees. A snapshot restored into a new monitor proves
 * itself by the next number being N+1 and still `ok`. Powers off at the end. */
#include "tiny.h"

#define AREA_QWORDS 512
#define TICK_CYCLES 200000000 /* ~0.1 s at 2 GHz */

  .text
  .globl guest_main
guest_main:
  lea area(%rip), %rdi
  movabs $0x9E3779B97F4A7C15, %rsi
  xor %ecx, %ecx
1:
  mov %rcx, %rax
  imul %rsi, %rax
  mov %rax, (%rdi,%rcx,8)
  inc %rcx
  cmp $AREA_QWORDS, %rcx
  jb 1b
  call area_sum
  mov %rax, expected_sum(%rip)
  PRINT("counter ready\n")
  xor %r12d, %r12d
next:
  cmp mirror(%rip), %r12
  jne bad
  call area_sum
  cmp expected_sum(%rip), %rax
  jne bad
  inc %r12
  mov %r12, mirror(%rip)
  PRINT("count ")
  mov %r12, %rdi
  call put_dec
  PRINT(" ok\n")
  call read_tsc
  mov %rax, %r13
2:
  pause
  call read_tsc
  sub %r13, %rax
  cmp $TICK_CYCLES, %rax
  jb 2b
  cmp $100000, %r12
  jb next
  jmp power_off
bad:
  PRINT("count ")
  mov %r12, %rdi
  call put_dec
  PRINT(" BAD\n")
  jmp power_off

/* area_sum: %rax = the sum of the area's qwords. */
area_sum:
  lea area(%rip), %rdi
  xor %eax, %eax
  xor %ecx, %ecx
1:
  add (%rdi,%rcx,8), %rax
  inc %rcx
  cmp $AREA_QWORDS, %rcx
  jb 1b
  ret

  .bss
  .balign 4096
area:
  .skip AREA_QWORDS * 8
mirror:
  .quad 0
expected_sum:
  .quad 0
