/* devices: the legacy platform devices a Linux kernel depends on while it boots.
 *  - port 0x61 (system control port B, KVM's in-kernel PIT): the refresh bit toggles, the
 *    channel-2 gate is writable, and channel 2's output is low while a mode-0 count runs and
 *    rises when it expires (Linux calibrates the TSC on exactly this);
 *  - the CMOS RTC: host UTC time in BCD, register D's "valid RAM and time" bit.
 * Prints one line per check, then powers off through the ACPI sleep control port.
 *
 * Every wait is bounded by the TSC (see read_tsc in common.S), not by a number of port reads:
 * each read is a VM exit, ~1 us on hardware KVM but 75-150 us in the nested lab, where the
 * old bounds of 2-5 million reads meant 5-12 minutes of silence when a check failed.
 */
#include "tiny.h"

#define PORT61 0x61
#define PORT61_GATE2 0x01       /* PIT channel 2 gate (read/write) */
#define PORT61_SPEAKER 0x02     /* speaker data enable (read/write) */
#define PORT61_REFRESH 0x10     /* refresh request toggle (read only) */
#define PORT61_OUT2 0x20        /* PIT channel 2 output (read only) */
#define PIT_CH2 0x42
#define PIT_MODE 0x43
#define PIT_CH2_MODE0_LOHI 0xB0 /* channel 2, lobyte/hibyte, mode 0, binary */
#define RTC_INDEX 0x70
#define RTC_DATA 0x71
#define RTC_COUNT 7             /* sec, min, hour, day, month, year, century */

/* Bounds in TSC cycles (1-5 GHz: 2e9 is 0.4-2 s). Generous: a check that passes passes in
 * microseconds (refresh), 55 ms (PIT) or at once (RTC); only failures wait this long. */
#define REFRESH_BUDGET 2000000000   /* the refresh bit toggles every ~15 us (KVM: 2^14 ns) */
#define PIT_BUDGET 5000000000       /* a 0xFFFF count is 54.9 ms at 1.193182 MHz */
#define RTC_UIP_BUDGET 2000000000   /* UIP lasts < 2 ms on hardware */
#define PIT_ATTEMPTS 3

  .text
  .globl guest_main
guest_main:
  push %rbx
  push %r12
  push %r13
  push %r14
  push %r15

  /* 0. Something drives port 0x61 at all. KVM's emulation reads bits 2, 3, 6 and 7 as 0
   * (hardware: 6 and 7 are error flags, clear), so all ones is a port nobody decodes. */
  in $PORT61, %al
  cmp $0xFF, %al
  jne 1f
  PRINT("port61 reads 0xff: nothing emulates it (open bus)\n")
1:

  /* 1. Refresh bit (bit 4): toggles every ~15 us on hardware; KVM derives it from host time
   * (bit 14 of the monotonic clock in ns). Polling samples it at arbitrary moments (in the lab
   * one read every ~75 us), so no exact rate can be checked: it must change twice (there and
   * back) within the bound. */
  in $PORT61, %al
  and $PORT61_REFRESH, %al
  mov %al, %r12b          /* the last value seen */
  xor %r13d, %r13d        /* changes seen */
  call read_tsc
  mov $REFRESH_BUDGET, %r14
  add %rax, %r14          /* deadline */
2:
  in $PORT61, %al
  and $PORT61_REFRESH, %al
  cmp %r12b, %al
  je 3f
  mov %al, %r12b
  inc %r13d
  cmp $2, %r13d
  jae 4f
3:
  call read_tsc
  cmp %r14, %rax
  jb 2b
  PRINT("port61 refresh stuck: ")
  mov %r13d, %edi
  call put_dec
  PRINT(" changes of bit 4\n")
  jmp 5f
4:
  PRINT("port61 refresh toggles\n")
5:

  /* 2. Gate (bit 0) is read back as written; speaker data (bit 1) kept off. */
  in $PORT61, %al
  and $0x0C, %al
  or $PORT61_GATE2, %al
  out %al, $PORT61
  in $PORT61, %al
  mov %al, %r12b          /* with the gate set */
  and $0xFC, %al
  out %al, $PORT61
  in $PORT61, %al
  mov %al, %r13b          /* with the gate clear */
  test $PORT61_GATE2, %r12b
  jz 6f
  test $PORT61_GATE2, %r13b
  jnz 6f
  PRINT("port61 gate ok\n")
  jmp 7f
6:
  PRINT("port61 gate broken: read ")
  movzbl %r12b, %edi
  call put_hex
  PRINT(" after setting, ")
  movzbl %r13b, %edi
  call put_hex
  PRINT(" after clearing\n")
7:

  /* 3. PIT channel 2, mode 0, gate on, as Linux's pit_calibrate_tsc(): writing the mode sets
   * the output (bit 5) low, it stays low while the count runs down and rises at terminal
   * count. With count 0xFFFF (54.9 ms) the read right after programming must see it low;
   * a vCPU descheduled for longer than that in between would see it high, so programming is
   * tried up to PIT_ATTEMPTS times before that is a failure. Then it must rise in the bound. */
  mov $PIT_ATTEMPTS, %r15d
30:
  in $PORT61, %al
  and $0xFD, %al          /* speaker off */
  or $PORT61_GATE2, %al
  out %al, $PORT61
  mov $PIT_CH2_MODE0_LOHI, %al
  out %al, $PIT_MODE
  mov $0xFF, %al
  out %al, $PIT_CH2       /* count low byte */
  out %al, $PIT_CH2       /* count high byte: counting starts */
  in $PORT61, %al
  test $PORT61_OUT2, %al
  jz 31f
  dec %r15d
  jnz 30b
  PRINT("port61 pit ch2 output high right after programming\n")
  jmp 34f
31:
  call read_tsc
  mov $PIT_BUDGET, %r14
  add %rax, %r14
32:
  in $PORT61, %al
  test $PORT61_OUT2, %al
  jnz 33f
  call read_tsc
  cmp %r14, %rax
  jb 32b
  PRINT("port61 pit ch2 output stuck low\n")
  jmp 34f
33:
  PRINT("port61 pit ch2 output ok\n")
34:
  in $PORT61, %al
  and $0xFC, %al          /* gate and speaker off */
  out %al, $PORT61

  /* 4. RTC. Wait (bounded) for no update in progress, then read the time twice until two
   * reads agree, so that a second ticking over between registers cannot tear the result. */
  mov $5, %r12d
  xor %r15d, %r15d        /* set once the UIP wait timed out: later tries do not wait */
  call read_tsc
  mov $RTC_UIP_BUDGET, %r14
  add %rax, %r14
20:
  mov $0x0A, %edi
  call rtc_read
  test $0x80, %al
  jz 11f
  test %r15d, %r15d
  jnz 11f
  pause
  call read_tsc
  cmp %r14, %rax
  jb 20b
  PRINT("rtc update-in-progress stuck\n")
  mov $1, %r15d
11:
  lea rtc_first(%rip), %rdi
  call rtc_read_all
  lea rtc_second(%rip), %rdi
  call rtc_read_all
  mov rtc_first(%rip), %rax
  cmp rtc_second(%rip), %rax
  je 12f
  dec %r12d
  jnz 20b
  PRINT("rtc unstable: two reads never agreed\n")
12:
  mov $0x0B, %edi
  call rtc_read
  mov %al, %r13b          /* register B: bit 2 = binary mode, bit 1 = 24-hour mode */
  PRINT("rtc regB=")
  movzbl %r13b, %edi
  call put_hex2
  PRINT("\n")

  test $0x04, %r13b
  jnz 14f
  /* BCD -> binary, in place. */
  lea rtc_second(%rip), %rbx
  xor %ecx, %ecx
13:
  movzbl (%rbx,%rcx), %eax
  mov %eax, %edx
  shr $4, %edx
  imul $10, %edx, %edx
  and $0x0F, %eax
  add %edx, %eax
  mov %al, (%rbx,%rcx)
  inc %ecx
  cmp $RTC_COUNT, %ecx
  jb 13b
14:
  lea rtc_second(%rip), %rbx
  PRINT("rtc ")
  movzbl 6(%rbx), %edi    /* century; registers without one read 0 or 0xff */
  cmp $19, %edi
  jb 15f
  cmp $99, %edi
  jbe 16f
15:
  mov $20, %edi
16:
  call put_dec2
  movzbl 5(%rbx), %edi
  call put_dec2
  mov $'-', %edi
  call putc
  movzbl 4(%rbx), %edi
  call put_dec2
  mov $'-', %edi
  call putc
  movzbl 3(%rbx), %edi
  call put_dec2
  mov $' ', %edi
  call putc
  movzbl 2(%rbx), %edi
  call put_dec2
  mov $':', %edi
  call putc
  movzbl 1(%rbx), %edi
  call put_dec2
  mov $':', %edi
  call putc
  movzbl 0(%rbx), %edi
  call put_dec2
  PRINT(" valid=")
  mov $0x0D, %edi
  call rtc_read
  movzbl %al, %edi
  call put_hex2
  PRINT("\n")

  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %rbx
  jmp power_off

/* rtc_read(%dil = register) -> %al */
rtc_read:
  mov %edi, %eax
  out %al, $RTC_INDEX
  in $RTC_DATA, %al
  ret

/* rtc_read_all(%rdi = 8-byte buffer): the RTC_COUNT registers of rtc_registers. */
rtc_read_all:
  push %rbx
  push %r12
  mov %rdi, %rbx
  xor %r12d, %r12d
1:
  lea rtc_registers(%rip), %rax
  movzbl (%rax,%r12), %edi
  call rtc_read
  mov %al, (%rbx,%r12)
  inc %r12d
  cmp $RTC_COUNT, %r12d
  jb 1b
  pop %r12
  pop %rbx
  ret

  .section .rodata
rtc_registers:
  .byte 0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32

  .data
  .balign 8
rtc_first:
  .quad 0
rtc_second:
  .quad 0
