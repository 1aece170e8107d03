/* idle: a guest that stays up and costs nothing. Prints "idle ready", marks the boot on port
 * 0x402, then halts with interrupts off for good: the vCPU sleeps in KVM, so many of them can run
 * side by side (the define-to-running benchmark starts dozens). */
#include "tiny.h"

  .text
  .globl guest_main
guest_main:
  PRINT("idle ready\n")
  mov $1, %edi
  call boot_mark
  jmp halt_forever
