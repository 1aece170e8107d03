/* reset_cf9: ends through the chipset reset control register (what Linux's reboot=pci and
 * the ACPI FADT RESET_REG use). */
#include "tiny.h"

  .text
  .globl guest_main
guest_main:
  PRINT("resetting via 0xcf9\n")
  jmp reset_cf9
