/* hello: the smallest useful guest. Proves the ELF loader, the 64-bit entry state, COM1
 * output, the boot-timing port and the i8042 reset path. */
#include "tiny.h"

  .text
  .globl guest_main
guest_main:
  PRINT("Hello from corral tiny guest\n")
  mov $1, %edi
  call boot_mark
  jmp reset_i8042
