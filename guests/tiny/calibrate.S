/* calibrate: measures how fast KVM runs guest kernel-mode (ring 0) code, for the host
 * calibration in src/engine/calibration.cpp. Prints "CALIBRATE-START", then runs laps of a
 * ring-0 add/dec/jnz loop, doubling the lap length, until the laps together took at least
 * LAP_BUDGET TSC cycles (0.1-0.5 s at 1-5 GHz) or the lap length reached MAX_LAP; then prints
 * "CALIBRATE-END iterations=N tsc=C" and powers off. The host times the two lines' arrival,
 * so the result does not depend on knowing the TSC frequency.
 *
 * The first lap (FIRST_LAP iterations) is ~0.5 s where ring 0 is emulated (PVM: ~0.5 M
 * iterations/s), after which the TSC budget is spent and the guest stops; on hardware KVM
 * (~1000 M/s) the laps double up to ~0.5 s in total (about ten laps). */
#include "tiny.h"

#define FIRST_LAP 250000
#define LAP_BUDGET 500000000
#define MAX_LAP 0x100000000

  .text
  .globl guest_main
guest_main:
  push %rbx
  push %r12
  push %r13
  push %r14
  PRINT("CALIBRATE-START\n")
  call read_tsc
  mov %rax, %r12          /* start TSC */
  mov $FIRST_LAP, %r13    /* current lap length */
  xor %r14d, %r14d        /* iterations done */
1:
  mov %r13, %rcx
  xor %ebx, %ebx
2:                        /* the measured loop: one add, one dec, one taken branch */
  add %rcx, %rbx
  dec %rcx
  jnz 2b
  add %r13, %r14
  call read_tsc
  sub %r12, %rax
  cmp $LAP_BUDGET, %rax
  jae 3f
  shl $1, %r13
  mov $MAX_LAP, %rax
  cmp %rax, %r13
  jb 1b
3:
  call read_tsc
  sub %r12, %rax
  mov %rax, %r12          /* elapsed TSC cycles */
  PRINT("CALIBRATE-END iterations=")
  mov %r14, %rdi
  call put_dec
  PRINT(" tsc=")
  mov %r12, %rdi
  call put_dec
  PRINT("\n")
  pop %r14
  pop %r13
  pop %r12
  pop %rbx
  jmp power_off
