/* virtio: a minimal virtio 1.x modern PCI driver, polling only (no interrupts, no MSI-X).
 * Finds virtio-blk (1af4:1042) and virtio-net (1af4:1041) on PCI bus 0 through 0xCF8/0xCFC,
 * enables memory space and bus mastering, reads BAR 0 and walks the vendor capabilities
 * (common, notify + multiplier, device), then for each device: reset, ACKNOWLEDGE | DRIVER,
 * only VIRTIO_F_VERSION_1, FEATURES_OK (checked), split virtqueues of at most QUEUE_SIZE_CAP
 * entries in fixed guest RAM, DRIVER_OK.
 *   block: writes sector 1 with the pattern byte i = (i & 0xff) ^ 0x5a (VIRTIO_BLK_T_OUT),
 *          reads sector 0 (T_IN); prints "blk capacity: N sectors", "blk write ok",
 *          "blk read: <its first 16 bytes as text>".
 *   net:   posts one receive buffer, sends a broadcast frame with EtherType 0x88b5 and payload
 *          "corral-tx", prints "net sent", then waits for a 0x88b5 frame and prints
 *          "net got: <payload>" (other frames are reported and skipped). A VM with a disk and
 *          no NIC skips this ("net: none"): a disk writer for the backup tests.
 * Then prints "virtio done" and powers off. Every wait is bounded by the TSC; every failure prints one line starting
 * with "virtio FAIL:" and powers off, so a monitor bug is a message, never a hang.
 */
#include "tiny.h"

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC
#define PCI_ENABLE 0x80000000
#define PCI_SLOTS 32
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x02
#define PCI_COMMAND_MASTER 0x04
#define PCI_STATUS_CAP_LIST_BIT 20      /* bit 4 of the status register, in dword 0x04 */
#define PCI_BAR0 0x10
#define PCI_BAR1 0x14
#define PCI_CAPABILITY_POINTER 0x34
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_MAX_CAPABILITIES 48         /* (256 - 64) / 4: a longer list is a loop */

/* vendor << 0 | device << 16, as dword 0 of configuration space reads. */
#define VIRTIO_BLOCK_ID 0x10421AF4
#define VIRTIO_NET_ID 0x10411AF4

/* virtio_pci_cap (virtio 1.2 §4.1.4): cfg_type values and field offsets. */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_DEVICE 4
#define CAP_BAR 4
#define CAP_OFFSET 8
#define CAP_NOTIFY_MULTIPLIER 16

/* virtio_pci_common_cfg (§4.1.4.3). */
#define COMMON_DEVICE_FEATURE_SELECT 0x00
#define COMMON_DEVICE_FEATURE 0x04
#define COMMON_DRIVER_FEATURE_SELECT 0x08
#define COMMON_DRIVER_FEATURE 0x0C
#define COMMON_STATUS 0x14
#define COMMON_QUEUE_SELECT 0x16
#define COMMON_QUEUE_SIZE 0x18
#define COMMON_QUEUE_MSIX_VECTOR 0x1A
#define COMMON_QUEUE_ENABLE 0x1C
#define COMMON_QUEUE_NOTIFY_OFF 0x1E
#define COMMON_QUEUE_DESC 0x20
#define COMMON_QUEUE_DRIVER 0x28
#define COMMON_QUEUE_DEVICE 0x30

/* Device status (§2.1). */
#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40
#define STATUS_FAILED 0x80
#define NO_VECTOR 0xFFFF

/* Split virtqueues (§2.7). */
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define AVAIL_F_NO_INTERRUPT 1
#define QUEUE_SIZE_CAP 8                /* the most descriptors any request here needs is 3 */
#define QUEUE_SIZE_MIN 4

/* Guest RAM the devices read and write (DMA): above this image (1 MiB + a few KiB) and below
 * the 64 MiB the tests give. One page per queue: descriptors at +0 (8 * 16 bytes), driver
 * area at +0x200, device area at +0x400 (alignments 16, 2 and 4 bytes: §2.7). */
#define RING_AREA 0x400000
#define BLOCK_RING (RING_AREA + 0x0000)
#define NET_RX_RING (RING_AREA + 0x1000)
#define NET_TX_RING (RING_AREA + 0x2000)
#define RING_AVAIL 0x200
#define RING_USED 0x400
#define BUFFER_AREA 0x410000
#define BLK_HEADER (BUFFER_AREA + 0x0000)      /* struct virtio_blk_req's first 16 bytes */
#define BLK_STATUS (BUFFER_AREA + 0x0100)
#define BLK_DATA (BUFFER_AREA + 0x0200)
#define NET_TX_BUFFER (BUFFER_AREA + 0x1000)
#define NET_RX_BUFFER (BUFFER_AREA + 0x2000)

#define SECTOR_SIZE 512
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_PATTERN_XOR 0x5A
#define BLK_SHOWN_BYTES 16

#define NET_HEADER_SIZE 12              /* virtio_net_hdr with num_buffers: VERSION_1 (§5.1.6) */
#define ETH_HEADER_SIZE 14
#define ETH_MIN_FRAME 60                /* without the FCS; shorter frames are padded */
#define NET_RX_BUFFER_SIZE (NET_HEADER_SIZE + 1514)
#define NET_TX_SIZE (NET_HEADER_SIZE + ETH_MIN_FRAME)
#define ETHERTYPE_LOCAL_LE 0xB588       /* 0x88b5 (local experimental) as a little-endian word */
#define NET_SHOWN_BYTES 32
#define NET_MAX_SKIPPED 16

/* Bounds in TSC cycles (1-5 GHz: IO 2-10 s, RX 8-40 s). The receive wait covers the test
 * noticing the transmitted frame and answering, in a slow nested lab. */
#define RESET_BUDGET 1000000000
#define IO_BUDGET 10000000000
#define RX_BUDGET 40000000000

/* struct device, one per virtio function (in .bss). */
#define DEV_PCI 0                       /* u32: config address | PCI_ENABLE, 0 = not found */
#define DEV_NOTIFY_MULTIPLIER 4         /* u32 */
#define DEV_COMMON 8                    /* u64: guest-physical addresses in BAR 0 */
#define DEV_NOTIFY 16
#define DEV_CONFIG 24
#define DEV_BAR 32
#define DEV_SIZE 40

/* struct queue, the driver's view of one virtqueue (in .bss). */
#define Q_DESC 0
#define Q_AVAIL 8
#define Q_USED 16
#define Q_NOTIFY 24                     /* u64: the address its notifications are written to */
#define Q_SIZE 32                       /* u16 */
#define Q_NEXT_AVAIL 34                 /* u16: free-running avail idx */
#define Q_LAST_USED 36                  /* u16: the used idx seen so far */
#define Q_INDEX 38                      /* u16: the queue's number, the value written to notify */
#define Q_STRUCT_SIZE 40

/* FAIL("why"): print "virtio FAIL: why" and power off (the test then sees which step). */
#define FAIL(s) PRINT("virtio FAIL: " s "\n"); jmp power_off

  .text
  .globl guest_main
guest_main:
  push %rbx
  push %r12

  call find_devices
  cmpl $0, blk_device+DEV_PCI(%rip)
  jne 1f
  FAIL("no virtio-blk (1af4:1042) on PCI bus 0")
1:

  /* ---- block ---- */
  lea blk_device(%rip), %rdi
  call setup_pci
  PRINT("blk: ")
  lea blk_device(%rip), %rdi
  call print_location
  lea blk_device(%rip), %rdi
  call device_begin
  lea blk_device(%rip), %rdi
  lea blk_queue(%rip), %rsi
  xor %edx, %edx
  mov $BLOCK_RING, %ecx
  call setup_queue
  lea blk_device(%rip), %rdi
  call device_driver_ok

  /* virtio_blk_config.capacity (§5.2.4), in two 32-bit reads as the config space is MMIO. */
  mov blk_device+DEV_CONFIG(%rip), %rcx
  test %rcx, %rcx
  jnz 3f
  FAIL("blk: no device configuration capability")
3:
  mov 4(%rcx), %eax
  shl $32, %rax
  mov (%rcx), %edx
  or %rdx, %rax
  mov %rax, %rbx
  PRINT("blk capacity: ")
  mov %rbx, %rdi
  call put_dec
  PRINT(" sectors\n")
  cmp $2, %rbx
  jae 4f
  FAIL("blk: the disk is smaller than 2 sectors")
4:

  /* Write sector 1 with the pattern. */
  xor %ecx, %ecx
5:
  mov %ecx, %eax
  xor $BLK_PATTERN_XOR, %al
  mov %al, BLK_DATA(%rcx)
  inc %ecx
  cmp $SECTOR_SIZE, %ecx
  jb 5b
  mov $BLK_T_OUT, %edi
  mov $1, %esi
  xor %edx, %edx                        /* data is device-readable */
  call blk_request
  test %eax, %eax
  jz 6f
  mov %eax, %ebx
  PRINT("virtio FAIL: blk write status ")
  mov %rbx, %rdi
  call put_dec
  PRINT("\n")
  jmp power_off
6:
  PRINT("blk write ok\n")

  /* Read sector 0 into a cleared buffer (so stale bytes cannot pass for data). */
  mov $BLK_DATA, %edi
  mov $SECTOR_SIZE, %ecx
  xor %eax, %eax
  rep stosb
  mov $BLK_T_IN, %edi
  xor %esi, %esi
  mov $DESC_F_WRITE, %edx
  call blk_request
  test %eax, %eax
  jz 7f
  mov %eax, %ebx
  PRINT("virtio FAIL: blk read status ")
  mov %rbx, %rdi
  call put_dec
  PRINT("\n")
  jmp power_off
7:
  PRINT("blk read: ")
  mov $BLK_DATA, %edi
  mov $BLK_SHOWN_BYTES, %esi
  call print_text
  PRINT("\n")

#ifdef BLK_COMMANDS
  /* blk_writer: the disk is written on command while the guest runs, for the backups of a
   * running VM. A digit d on COM1 fills the sector at (d + 1) MiB with the byte d ('0' is
   * 0x30) and prints "blk wrote d"; 'q' goes on (to "virtio done" and power off); other
   * bytes are ignored. The wait for a command is unbounded, as echo's is. */
  PRINT("blk commands ready\n")
30:
  mov $0x3FD, %dx                       /* LSR */
  inb %dx, %al
  test $1, %al                          /* DR: a received byte is waiting */
  jz 30b
  mov $0x3F8, %dx                       /* RBR */
  inb %dx, %al
  cmp $'q', %al
  je 32f
  cmp $'0', %al
  jb 30b
  cmp $'9', %al
  ja 30b
  movzbl %al, %ebx
  mov $BLK_DATA, %edi
  mov $SECTOR_SIZE, %ecx
  mov %ebx, %eax
  rep stosb
  lea (1 - '0')(%rbx), %esi             /* d + 1 */
  shl $11, %esi                         /* MiB in sectors */
  mov $BLK_T_OUT, %edi
  xor %edx, %edx                        /* data is device-readable */
  call blk_request
  test %eax, %eax
  jz 31f
  FAIL("blk: a commanded write failed")
31:
  PRINT("blk wrote ")
  mov %ebx, %edi
  call putc
  PRINT("\n")
  jmp 30b
32:
#endif

  /* ---- net ---- */
  cmpl $0, net_device+DEV_PCI(%rip)
  jne 20f
  PRINT("net: none\n")
  jmp 21f
20:
  lea net_device(%rip), %rdi
  call setup_pci
  PRINT("net: ")
  lea net_device(%rip), %rdi
  call print_location
  lea net_device(%rip), %rdi
  call device_begin
  lea net_device(%rip), %rdi
  lea net_rx_queue(%rip), %rsi
  xor %edx, %edx                        /* receiveq1 (§5.1.2) */
  mov $NET_RX_RING, %ecx
  call setup_queue
  lea net_device(%rip), %rdi
  lea net_tx_queue(%rip), %rsi
  mov $1, %edx                          /* transmitq1 */
  mov $NET_TX_RING, %ecx
  call setup_queue
  lea net_device(%rip), %rdi
  call device_driver_ok

  /* The receive buffer goes in first, so the answer to our frame has somewhere to land. */
  call post_rx_buffer

  /* The frame: a zeroed virtio_net_hdr (no offloads), broadcast, our source MAC, 0x88b5,
   * "corral-tx", zero padding to the minimum frame. */
  mov $NET_TX_BUFFER, %edi
  mov $NET_TX_SIZE, %ecx
  xor %eax, %eax
  rep stosb
  mov $(NET_TX_BUFFER + NET_HEADER_SIZE), %edi
  lea tx_ethernet_header(%rip), %rsi
  mov $(tx_payload_end - tx_ethernet_header), %ecx
  rep movsb
  lea net_tx_queue(%rip), %rdi
  xor %esi, %esi
  mov $NET_TX_BUFFER, %edx
  mov $NET_TX_SIZE, %ecx
  xor %r8d, %r8d
  xor %r9d, %r9d
  call set_descriptor
  lea net_tx_queue(%rip), %rdi
  xor %esi, %esi
  call submit
  lea net_tx_queue(%rip), %rdi
  movabs $IO_BUDGET, %rsi
  call wait_used
  cmp $-1, %eax
  jne 8f
  FAIL("net: the transmitted frame was never used")
8:
  PRINT("net sent\n")

  mov $NET_MAX_SKIPPED, %r12d
9:
  lea net_rx_queue(%rip), %rdi
  movabs $RX_BUDGET, %rsi
  call wait_used
  cmp $-1, %eax
  jne 10f
  FAIL("net: no frame received")
10:
  mov %eax, %ebx                        /* bytes written: header + frame */
  cmp $(NET_HEADER_SIZE + ETH_HEADER_SIZE), %ebx
  jb 11f
  cmpw $ETHERTYPE_LOCAL_LE, NET_RX_BUFFER + NET_HEADER_SIZE + 12
  je 12f
11:
  /* Not ours (the host may send its own frames on a fresh tap): say so, reuse the buffer. */
  PRINT("net skipped a frame of ")
  mov %rbx, %rdi
  call put_dec
  PRINT(" bytes\n")
  dec %r12d
  jnz 13f
  FAIL("net: too many foreign frames")
13:
  call post_rx_buffer
  jmp 9b
12:
  PRINT("net got: ")
  mov $(NET_RX_BUFFER + NET_HEADER_SIZE + ETH_HEADER_SIZE), %edi
  lea -(NET_HEADER_SIZE + ETH_HEADER_SIZE)(%rbx), %esi
  cmp $NET_SHOWN_BYTES, %esi
  jbe 14f
  mov $NET_SHOWN_BYTES, %esi
14:
  call print_text
  PRINT("\n")
21:
  PRINT("virtio done\n")
  pop %r12
  pop %rbx
  jmp power_off

/* find_devices(): the first virtio-blk and virtio-net function 0 on bus 0, into their
 * struct device's DEV_PCI (config address | PCI_ENABLE). */
find_devices:
  push %rbx
  xor %ebx, %ebx
1:
  mov %ebx, %edi
  shl $11, %edi                         /* device number: bits 15:11 of the config address */
  call pci_read32
  mov %ebx, %ecx
  shl $11, %ecx
  or $PCI_ENABLE, %ecx
  cmp $VIRTIO_BLOCK_ID, %eax
  jne 2f
  cmpl $0, blk_device+DEV_PCI(%rip)
  jne 3f
  mov %ecx, blk_device+DEV_PCI(%rip)
  jmp 3f
2:
  cmp $VIRTIO_NET_ID, %eax
  jne 3f
  cmpl $0, net_device+DEV_PCI(%rip)
  jne 3f
  mov %ecx, net_device+DEV_PCI(%rip)
3:
  inc %ebx
  cmp $PCI_SLOTS, %ebx
  jb 1b
  pop %rbx
  ret

/* pci_read32(%edi = config address, dword aligned) -> %eax. */
pci_read32:
  mov %edi, %eax
  or $PCI_ENABLE, %eax
  mov $PCI_CONFIG_ADDRESS, %dx
  out %eax, %dx
  mov $PCI_CONFIG_DATA, %dx
  in %dx, %eax
  ret

/* pci_write16(%edi = config address, word aligned, %esi = value): a 16-bit data access at
 * 0xCFC + (offset & 2), as Linux does, so the neighbouring register is not written. */
pci_write16:
  mov %edi, %eax
  and $~3, %eax
  or $PCI_ENABLE, %eax
  mov $PCI_CONFIG_ADDRESS, %dx
  out %eax, %dx
  mov %edi, %edx
  and $2, %edx
  add $PCI_CONFIG_DATA, %edx
  mov %esi, %eax
  out %ax, %dx
  ret

/* setup_pci(%rdi = device): memory space + bus master on, BAR 0, and the virtio
 * capabilities (§4.1.4) that point into BAR 0. Fails (powers off) without common or notify. */
setup_pci:
  push %rbx
  push %rbp
  push %r12
  push %r13
  push %r14
  push %r15
  mov %rdi, %rbx
  mov DEV_PCI(%rbx), %r12d
  and $(PCI_ENABLE - 1), %r12d        /* the config address without the enable bit */

  /* Memory space so BAR 0 decodes; bus master so the device may read and write our rings. */
  lea PCI_COMMAND(%r12), %edi
  call pci_read32
  or $(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER), %eax
  movzwl %ax, %esi
  lea PCI_COMMAND(%r12), %edi
  call pci_write16

  /* BAR 0: a memory BAR, 64-bit when type (bits 2:1) is 2; the monitor placed it already. */
  lea PCI_BAR0(%r12), %edi
  call pci_read32
  test $1, %al
  jz 1f
  FAIL("BAR 0 is an I/O BAR")
1:
  mov %eax, %r13d
  and $~0xF, %r13d
  and $6, %eax
  cmp $4, %eax
  jne 2f
  lea PCI_BAR1(%r12), %edi
  call pci_read32
  shl $32, %rax
  or %rax, %r13
2:
  test %r13, %r13
  jnz 3f
  FAIL("BAR 0 is not assigned")
3:
  mov %r13, DEV_BAR(%rbx)

  lea PCI_COMMAND(%r12), %edi
  call pci_read32
  bt $PCI_STATUS_CAP_LIST_BIT, %eax
  jc 4f
  FAIL("no PCI capability list")
4:
  lea PCI_CAPABILITY_POINTER(%r12), %edi
  call pci_read32
  movzbl %al, %r14d
  and $0xFC, %r14d
  mov $PCI_MAX_CAPABILITIES, %r15d
5:
  test %r14d, %r14d
  jz 9f
  dec %r15d
  js 9f
  lea (%r12,%r14), %edi
  call pci_read32
  mov %eax, %ebp                        /* id, next, cap_len, cfg_type */
  cmp $PCI_CAP_ID_VENDOR, %al
  jne 8f
  lea CAP_BAR(%r12,%r14), %edi
  call pci_read32
  test %al, %al                         /* only structures in BAR 0 are looked at */
  jnz 8f
  lea CAP_OFFSET(%r12,%r14), %edi
  call pci_read32
  mov %eax, %eax
  add %r13, %rax                        /* the structure's guest-physical address */
  mov %ebp, %ecx
  shr $24, %ecx
  cmp $CAP_COMMON, %ecx
  jne 6f
  cmpq $0, DEV_COMMON(%rbx)             /* §4.1.4.1: the first of a type is the one to use */
  jne 8f
  mov %rax, DEV_COMMON(%rbx)
  jmp 8f
6:
  cmp $CAP_NOTIFY, %ecx
  jne 7f
  cmpq $0, DEV_NOTIFY(%rbx)
  jne 8f
  mov %rax, DEV_NOTIFY(%rbx)
  lea CAP_NOTIFY_MULTIPLIER(%r12,%r14), %edi
  call pci_read32
  mov %eax, DEV_NOTIFY_MULTIPLIER(%rbx)
  jmp 8f
7:
  cmp $CAP_DEVICE, %ecx
  jne 8f
  cmpq $0, DEV_CONFIG(%rbx)
  jne 8f
  mov %rax, DEV_CONFIG(%rbx)
8:
  mov %ebp, %eax
  shr $8, %eax
  movzbl %al, %r14d
  and $0xFC, %r14d
  jmp 5b
9:
  cmpq $0, DEV_COMMON(%rbx)
  jne 10f
  FAIL("no common configuration capability in BAR 0")
10:
  cmpq $0, DEV_NOTIFY(%rbx)
  jne 11f
  FAIL("no notification capability in BAR 0")
11:
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %rbp
  pop %rbx
  ret

/* print_location(%rdi = device): "pci slot N, BAR 0 0x..., notify multiplier M\n". */
print_location:
  push %rbx
  mov %rdi, %rbx
  PRINT("pci slot ")
  mov DEV_PCI(%rbx), %edi
  shr $11, %edi
  and $0x1F, %edi
  call put_dec
  PRINT(", BAR 0 ")
  mov DEV_BAR(%rbx), %rdi
  call put_hex
  PRINT(", notify multiplier ")
  mov DEV_NOTIFY_MULTIPLIER(%rbx), %edi
  call put_dec
  PRINT("\n")
  pop %rbx
  ret

/* device_begin(%rdi = device): §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features (only
 * VIRTIO_F_VERSION_1, bit 32), FEATURES_OK, and the check that the device kept it. */
device_begin:
  push %rbx
  push %r12
  mov DEV_COMMON(%rdi), %rbx
  movb $0, COMMON_STATUS(%rbx)
  /* §4.1.4.3.2: after writing 0 the driver waits for status to read 0. */
  mov $RESET_BUDGET, %edi
  call deadline_in
  mov %rax, %r12
1:
  cmpb $0, COMMON_STATUS(%rbx)
  je 2f
  pause
  mov %r12, %rdi
  call passed
  test %eax, %eax
  jz 1b
  FAIL("device status did not read 0 after reset")
2:
  movb $STATUS_ACKNOWLEDGE, COMMON_STATUS(%rbx)
  movb $(STATUS_ACKNOWLEDGE | STATUS_DRIVER), COMMON_STATUS(%rbx)
  movl $1, COMMON_DEVICE_FEATURE_SELECT(%rbx)
  testl $1, COMMON_DEVICE_FEATURE(%rbx)  /* bit 32: VIRTIO_F_VERSION_1 */
  jnz 3f
  FAIL("device does not offer VIRTIO_F_VERSION_1")
3:
  movl $0, COMMON_DRIVER_FEATURE_SELECT(%rbx)
  movl $0, COMMON_DRIVER_FEATURE(%rbx)
  movl $1, COMMON_DRIVER_FEATURE_SELECT(%rbx)
  movl $1, COMMON_DRIVER_FEATURE(%rbx)
  movb $(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK), COMMON_STATUS(%rbx)
  testb $STATUS_FEATURES_OK, COMMON_STATUS(%rbx)
  jnz 4f
  FAIL("device cleared FEATURES_OK")
4:
  pop %r12
  pop %rbx
  ret

/* setup_queue(%rdi = device, %rsi = struct queue, %edx = queue number, %ecx = ring page):
 * §4.1.5.1.3: select, size (the device's, capped), no MSI-X vector, the three areas, enable. */
setup_queue:
  push %rbx
  push %r12
  push %r13
  push %r14
  push %r15
  mov %rdi, %r15
  mov %rsi, %rbx
  mov %edx, %r13d
  mov %ecx, %r14d
  mov DEV_COMMON(%r15), %r12

  mov %r14d, %edi
  mov $0x1000, %ecx
  xor %eax, %eax
  rep stosb
  /* Polling: ask the device not to interrupt (a hint without EVENT_IDX, §2.7.7). */
  movw $AVAIL_F_NO_INTERRUPT, RING_AVAIL(%r14)

  mov %r13w, COMMON_QUEUE_SELECT(%r12)
  movzwl COMMON_QUEUE_SIZE(%r12), %eax
  cmp $QUEUE_SIZE_CAP, %eax
  jbe 1f
  mov $QUEUE_SIZE_CAP, %eax
1:
  cmp $QUEUE_SIZE_MIN, %eax
  jae 2f
  FAIL("a queue is missing or has fewer than 4 entries")
2:
  mov %ax, COMMON_QUEUE_SIZE(%r12)
  mov %ax, Q_SIZE(%rbx)
  movw $NO_VECTOR, COMMON_QUEUE_MSIX_VECTOR(%r12)

  /* 64-bit fields as two 32-bit writes (§4.1.3.1 allows it; every transport takes it). */
  mov %r14, Q_DESC(%rbx)
  mov %r14d, COMMON_QUEUE_DESC(%r12)
  movl $0, COMMON_QUEUE_DESC+4(%r12)
  lea RING_AVAIL(%r14), %rax
  mov %rax, Q_AVAIL(%rbx)
  mov %eax, COMMON_QUEUE_DRIVER(%r12)
  movl $0, COMMON_QUEUE_DRIVER+4(%r12)
  lea RING_USED(%r14), %rax
  mov %rax, Q_USED(%rbx)
  mov %eax, COMMON_QUEUE_DEVICE(%r12)
  movl $0, COMMON_QUEUE_DEVICE+4(%r12)

  /* §4.1.4.4: notify address = notify base + queue_notify_off * notify_off_multiplier. */
  movzwl COMMON_QUEUE_NOTIFY_OFF(%r12), %eax
  imull DEV_NOTIFY_MULTIPLIER(%r15), %eax
  add DEV_NOTIFY(%r15), %rax
  mov %rax, Q_NOTIFY(%rbx)
  mov %r13w, Q_INDEX(%rbx)
  movw $0, Q_NEXT_AVAIL(%rbx)
  movw $0, Q_LAST_USED(%rbx)

  movw $1, COMMON_QUEUE_ENABLE(%r12)
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %rbx
  ret

/* device_driver_ok(%rdi = device): §3.1.1 step 8, and the check that the device did not
 * refuse our queues (the transport then sets DEVICE_NEEDS_RESET). */
device_driver_ok:
  mov DEV_COMMON(%rdi), %rcx
  movb $(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK), COMMON_STATUS(%rcx)
  movzbl COMMON_STATUS(%rcx), %eax
  test $(STATUS_NEEDS_RESET | STATUS_FAILED), %al
  jz 1f
  FAIL("device needs a reset after DRIVER_OK (it refused the queues)")
1:
  test $STATUS_DRIVER_OK, %al
  jnz 2f
  FAIL("device did not keep DRIVER_OK")
2:
  ret

/* set_descriptor(%rdi = queue, %esi = index, %rdx = address, %ecx = length, %r8d = flags,
 * %r9d = next): one struct virtq_desc (§2.7.5). */
set_descriptor:
  mov Q_DESC(%rdi), %rax
  shl $4, %esi
  add %rsi, %rax
  mov %rdx, (%rax)
  mov %ecx, 8(%rax)
  mov %r8w, 12(%rax)
  mov %r9w, 14(%rax)
  ret

/* submit(%rdi = queue, %esi = head descriptor): put the chain in the available ring, publish
 * the new idx, notify (§2.7.13). */
submit:
  mov Q_AVAIL(%rdi), %r8
  movzwl Q_NEXT_AVAIL(%rdi), %eax
  movzwl Q_SIZE(%rdi), %ecx
  dec %ecx                              /* sizes are powers of two */
  mov %eax, %edx
  and %ecx, %edx
  mov %si, 4(%r8,%rdx,2)                /* ring[idx % size] */
  inc %eax
  mov %ax, Q_NEXT_AVAIL(%rdi)
  /* The entry before the idx (x86 keeps stores in order; the fence says so in the code),
   * and the idx before the notification. */
  sfence
  mov %ax, 2(%r8)
  mfence
  mov Q_NOTIFY(%rdi), %rdx
  movzwl Q_INDEX(%rdi), %eax
  mov %ax, (%rdx)
  ret

/* wait_used(%rdi = queue, %rsi = budget in TSC cycles) -> %eax = the used element's length
 * and %edx its id, or %eax = -1 when the budget ran out. Polls guest RAM (no VM exits). */
wait_used:
  push %rbx
  push %r12
  mov %rdi, %rbx
  mov %rsi, %rdi
  call deadline_in
  mov %rax, %r12
1:
  mov Q_USED(%rbx), %rcx
  movzwl 2(%rcx), %eax                  /* used idx */
  cmp Q_LAST_USED(%rbx), %ax
  jne 2f
  pause
  mov %r12, %rdi
  call passed
  test %eax, %eax
  jz 1b
  mov $-1, %eax
  jmp 3f
2:
  lfence                                /* the element is read after the idx that covers it */
  movzwl Q_LAST_USED(%rbx), %eax
  movzwl Q_SIZE(%rbx), %edx
  dec %edx
  and %eax, %edx
  mov 4(%rcx,%rdx,8), %r8d              /* used ring[last % size].id */
  mov 8(%rcx,%rdx,8), %r9d              /* .len */
  inc %eax
  mov %ax, Q_LAST_USED(%rbx)
  mov %r9d, %eax
  mov %r8d, %edx
3:
  pop %r12
  pop %rbx
  ret

/* blk_request(%edi = type, %rsi = sector, %edx = data descriptor flags) -> %eax = the status
 * byte the device wrote (0 = VIRTIO_BLK_S_OK). Header, one sector of data, status: three
 * descriptors (§5.2.6). Fails (powers off) when the request is not completed in time. */
blk_request:
  push %rbx
  mov %edx, %ebx
  mov %edi, BLK_HEADER
  movl $0, BLK_HEADER + 4
  mov %rsi, BLK_HEADER + 8
  movb $0xFF, BLK_STATUS                /* not a status the device writes: proves it wrote */

  lea blk_queue(%rip), %rdi
  xor %esi, %esi
  mov $BLK_HEADER, %edx
  mov $16, %ecx
  mov $DESC_F_NEXT, %r8d
  mov $1, %r9d
  call set_descriptor
  lea blk_queue(%rip), %rdi
  mov $1, %esi
  mov $BLK_DATA, %edx
  mov $SECTOR_SIZE, %ecx
  lea DESC_F_NEXT(%rbx), %r8d
  mov $2, %r9d
  call set_descriptor
  lea blk_queue(%rip), %rdi
  mov $2, %esi
  mov $BLK_STATUS, %edx
  mov $1, %ecx
  mov $DESC_F_WRITE, %r8d
  xor %r9d, %r9d
  call set_descriptor
  lea blk_queue(%rip), %rdi
  xor %esi, %esi
  call submit
  lea blk_queue(%rip), %rdi
  movabs $IO_BUDGET, %rsi
  call wait_used
  cmp $-1, %eax
  jne 1f
  FAIL("blk: request not completed in time")
1:
  test %edx, %edx
  jz 2f
  FAIL("blk: the device returned a descriptor we did not submit")
2:
  movzbl BLK_STATUS, %eax
  pop %rbx
  ret

/* post_rx_buffer(): descriptor 0 of the receive queue, device-writable, header + 1514. */
post_rx_buffer:
  lea net_rx_queue(%rip), %rdi
  xor %esi, %esi
  mov $NET_RX_BUFFER, %edx
  mov $NET_RX_BUFFER_SIZE, %ecx
  mov $DESC_F_WRITE, %r8d
  xor %r9d, %r9d
  call set_descriptor
  lea net_rx_queue(%rip), %rdi
  xor %esi, %esi
  jmp submit

/* print_text(%rdi = bytes, %esi = at most this many): up to the first NUL, anything outside
 * printable ASCII as '.', so the console stays one line per message. */
print_text:
  push %rbx
  push %r12
  mov %rdi, %rbx
  mov %esi, %r12d
1:
  test %r12d, %r12d
  jz 3f
  movzbl (%rbx), %edi
  test %edi, %edi
  jz 3f
  cmp $0x20, %edi
  jb 2f
  cmp $0x7E, %edi
  jbe 4f
2:
  mov $'.', %edi
4:
  call putc
  inc %rbx
  dec %r12d
  jmp 1b
3:
  pop %r12
  pop %rbx
  ret

/* deadline_in(%rdi = budget in TSC cycles) -> %rax = the TSC value at which it runs out. */
deadline_in:
  call read_tsc
  add %rdi, %rax
  ret

/* passed(%rdi = deadline) -> %eax = 1 when the TSC has reached it. Clobbers %rdx. */
passed:
  call read_tsc
  cmp %rdi, %rax
  setae %al
  movzbl %al, %eax
  ret

  .section .rodata
tx_ethernet_header:
  .byte 0xff, 0xff, 0xff, 0xff, 0xff, 0xff     /* broadcast */
  .byte 0x52, 0x54, 0x00, 0xc0, 0xff, 0xee     /* a locally administered source */
  .byte 0x88, 0xb5                             /* local experimental EtherType */
  .ascii "corral-tx"
tx_payload_end:

  .bss
  .balign 8
blk_device:
  .skip DEV_SIZE
net_device:
  .skip DEV_SIZE
blk_queue:
  .skip Q_STRUCT_SIZE
net_rx_queue:
  .skip Q_STRUCT_SIZE
net_tx_queue:
  .skip Q_STRUCT_SIZE
