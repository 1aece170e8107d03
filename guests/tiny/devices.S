/* devices: the legacy platform devices a Linux kernel depends on while it boots.
 *  - port 0x61 (KVM's in-kernel PIT): the refresh bit toggles, the channel-2 gate is
 *    writable, and channel 2's output rises when its count expires (Linux calibrates the TSC
 *    on exactly this);
 *  - the CMOS RTC: host UTC time in BCD, register D's "valid RAM and time" bit.
 * Prints one line per check, then powers off through the ACPI sleep control port.
 */
#include "tiny.h"

#define PORT61 0x61
#define PIT_CH2 0x42
#define PIT_MODE 0x43
#define RTC_INDEX 0x70
#define RTC_DATA 0x71
#define RTC_COUNT 7             /* sec, min, hour, day, month, year, century */

  .text
  .globl guest_main
guest_main:
  push %rbx
  push %r12
  push %r13

  /* 1. Refresh bit (bit 4): toggles every ~15 us on real hardware; bounded reads. */
  in $PORT61, %al
  and $0x10, %al
  mov %al, %r12b
  mov $2000000, %ebx
1:
  in $PORT61, %al
  and $0x10, %al
  cmp %r12b, %al
  jne 2f
  dec %ebx
  jnz 1b
  PRINT("port61 refresh stuck\n")
  jmp 3f
2:
  PRINT("port61 refresh toggles\n")
3:

  /* 2. Gate (bit 0) is read back as written; speaker data (bit 1) kept off. */
  in $PORT61, %al
  and $0x0C, %al
  or $0x01, %al
  out %al, $PORT61
  in $PORT61, %al
  mov %al, %r12b          /* with the gate set */
  and $0xFC, %al
  out %al, $PORT61
  in $PORT61, %al
  mov %al, %r13b          /* with the gate clear */
  test $0x01, %r12b
  jz 4f
  test $0x01, %r13b
  jnz 4f
  PRINT("port61 gate ok\n")
  jmp 5f
4:
  PRINT("port61 gate broken: read ")
  movzbl %r12b, %edi
  call put_hex
  PRINT(" after setting, ")
  movzbl %r13b, %edi
  call put_hex
  PRINT(" after clearing\n")
5:

  /* 3. PIT channel 2, mode 0, count 0x1000 (~3.4 ms), gate on: output (bit 5) must rise.
   * The same sequence as Linux's pit_calibrate_tsc(). */
  in $PORT61, %al
  and $0xFD, %al
  or $0x01, %al
  out %al, $PORT61
  mov $0xB0, %al          /* channel 2, lobyte/hibyte, mode 0, binary */
  out %al, $PIT_MODE
  mov $0x00, %al
  out %al, $PIT_CH2
  mov $0x10, %al
  out %al, $PIT_CH2
  mov $5000000, %ebx
6:
  in $PORT61, %al
  test $0x20, %al
  jnz 7f
  dec %ebx
  jnz 6b
  PRINT("port61 pit ch2 output stuck low\n")
  jmp 8f
7:
  PRINT("port61 pit ch2 output ok\n")
8:
  in $PORT61, %al
  and $0xFC, %al
  out %al, $PORT61

  /* 4. RTC. Wait (bounded) for no update in progress, then read the time twice until two
   * reads agree, so that a second ticking over between registers cannot tear the result. */
  mov $5, %r12d
  mov $2000000, %ebx      /* UIP lasts < 2 ms on hardware: bound the wait anyway */
10:
  mov $0x0A, %edi
  call rtc_read
  test $0x80, %al
  jz 11f
  pause
  dec %ebx
  jnz 10b
  PRINT("rtc update-in-progress stuck\n")
  mov $1, %ebx            /* a retry reads once more instead of wrapping the count */
11:
  lea rtc_first(%rip), %rdi
  call rtc_read_all
  lea rtc_second(%rip), %rdi
  call rtc_read_all
  mov rtc_first(%rip), %rax
  cmp rtc_second(%rip), %rax
  je 12f
  dec %r12d
  jnz 10b
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
