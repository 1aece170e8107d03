/* triple_fault: an undefined opcode with no IDT escalates to a triple fault; the monitor must
 * report it as a guest crash (exit 1), not hang and not call it a clean reset. */
#include "tiny.h"

  .text
  .globl guest_main
guest_main:
  PRINT("about to fault\n")
  ud2
  PRINT("ud2 did not fault\n")
  jmp halt_forever
