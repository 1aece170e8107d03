/* Shared constants for the tiny test guests (GNU assembler, preprocessed).
 *
 * The guests are entered by corral-vmm in 64-bit long mode with an identity map of the first
 * 4 GiB, CS=0x08, data segments 0x10, interrupts off, no IDT, and no stack: see
 * guests/tiny/README.md for the contract they rely on.
 */
#pragma once

#define COM1_THR 0x3F8
#define COM1_LSR 0x3FD
#define LSR_THRE 0x20

#define I8042_COMMAND 0x64
#define I8042_RESET 0xFE

#define BOOT_TIMING_PORT 0x402
#define RESET_CONTROL_PORT 0xCF9
#define RESET_CONTROL_VALUE 0x06
#define ACPI_SLEEP_CONTROL_PORT 0x600
/* SLP_TYP 5 << 2 | SLP_EN (1 << 5): S5, power off. */
#define ACPI_SLEEP_S5 0x34

#define LAPIC_BASE 0xFEE00000
#define LAPIC_ID 0x020
#define LAPIC_SVR 0x0F0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310

/* Each guest's stack size (the BSP's); APs get their own in the smp guest. */
#define STACK_SIZE 0x4000

/* PRINT("text\n"): print a string literal on COM1. Clobbers the caller-saved registers. */
#define PRINT(s) \
  .pushsection .rodata; 7777: .asciz s; .popsection; lea 7777b(%rip), %rdi; call puts
