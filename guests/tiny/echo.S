/* echo: proves serial input. Prints a banner, then echoes every byte received on COM1 (polling
 * LSR.DR) until it receives 'q', then resets through the i8042. */
#include "tiny.h"

  .text
  .globl guest_main
guest_main:
  PRINT("echo ready\n")
1:
  mov $0x3FD, %dx          /* LSR */
  inb %dx, %al
  test $1, %al             /* DR: a received byte is waiting */
  jz 1b
  mov $0x3F8, %dx          /* RBR */
  inb %dx, %al
  cmp $'q', %al
  je 2f
  movzbl %al, %edi
  call putc
  jmp 1b
2:
  PRINT("\necho done\n")
  jmp reset_i8042
