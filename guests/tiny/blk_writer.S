/* blk_writer: the virtio guest (virtio.S) with a disk it writes on command while it runs: after
 * its block test it prints "blk commands ready", and each digit d received on COM1 writes the
 * byte d over the sector at (d + 1) MiB ("blk wrote d"); 'q' ends as virtio does. The disk
 * writer of the running-VM backup test (native_live_backup_incremental.sh). */
#define BLK_COMMANDS 1
#include "virtio.S"
