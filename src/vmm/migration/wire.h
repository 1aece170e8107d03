#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "vmm/config/vm_config.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm {
class GuestMemory;
}

/// The live-migration stream between two corral-vmm processes (docs/migration.md).
///
/// A sequence of records. Each record is one state_stream.h section: tag (u32), version (u16),
/// reserved (u16), payload length (u32), CRC-32C of the payload (u32), then the payload. A
/// reader refuses a record longer than k_max_record_bytes before it allocates anything, and
/// checks the checksum before decoding it; so a truncated, corrupted or hostile stream ends the
/// migration with the reason and never crashes the destination.
///
/// Source -> destination: HELO (protocol version, VM configuration, the CPUID each vCPU was
/// given), then PAGE records (guest pages: first every page that is not zero, then the pages
/// dirtied meanwhile, round after round), then STAT (the snapshot state file's bytes, see
/// snapshot_file.h: vCPU, KVM and device state), then, once the destination has loaded it, GO__.
/// Destination -> source: ACPT after HELO (it built the VM and can give the guest its CPU
/// features), LOAD after STAT (the state is in; it waits for GO__ to run the guest). Either side
/// may send FAIL (a sentence) instead, and then closes.
namespace corral::vmm::migration {

inline constexpr uint32_t k_protocol_version = 1;
inline constexpr uint64_t k_page_size = 4096;
/// Pages per PAGE record: 1 MiB of data at most, so a record is small next to a link's second.
inline constexpr uint32_t k_max_pages_per_record = 256;
/// The largest record a reader accepts (STAT is the largest: a state file, see k_max_state_bytes).
inline constexpr uint32_t k_max_record_bytes = 64u << 20;

inline constexpr uint32_t k_hello = snapshot::tag("HELO");
inline constexpr uint32_t k_accept = snapshot::tag("ACPT");
inline constexpr uint32_t k_fail = snapshot::tag("FAIL");
inline constexpr uint32_t k_pages = snapshot::tag("PAGE");
inline constexpr uint32_t k_state = snapshot::tag("STAT");
inline constexpr uint32_t k_loaded = snapshot::tag("LOAD");
inline constexpr uint32_t k_go = snapshot::tag("GO__");

/// One record as received: its tag and its bytes (header included), checksum not yet checked.
struct Record {
    uint32_t tag = 0;
    std::vector<uint8_t> bytes;
};

/// A record's bytes: the section header and the payload `fill` writes.
std::vector<uint8_t> encode_record(uint32_t tag, const std::function<void(snapshot::StateWriter&)>& fill);
/// A record with no payload (ACPT, LOAD, GO__).
std::vector<uint8_t> encode_empty_record(uint32_t tag);
/// FAIL with `message`.
std::vector<uint8_t> encode_failure(const std::string& message);

/// Checks `record` (tag, version, checksum) and decodes its payload with `read`, which must
/// consume it exactly. A FAIL record is returned as the peer's error ("the destination says:
/// ..."), another tag as a protocol error. `peer` names the other side in messages.
Result<void> decode_record(const Record& record, uint32_t expected_tag, const std::string& peer,
                           const std::function<void(snapshot::StateReader&)>& read);

/// What the source tells the destination first.
struct Hello {
    VmConfig config;
    /// The CPUID table each vCPU was given, in vCPU id order (the destination checks it can give
    /// the same features before any page moves).
    std::vector<std::vector<kvm_cpuid_entry2>> cpuids;
};
std::vector<uint8_t> encode_hello(const Hello& hello);
Result<Hello> decode_hello(const Record& record);

/// Gathers guest pages into PAGE records of at most k_max_pages_per_record pages.
class PageBatch {
public:
    /// Adds the page at `address` (page-aligned); `data` is its k_page_size bytes, or null for
    /// a page that is all zeros (sent as its address alone). The bytes are read by take(), not
    /// here: each page is copied once, into the record (a page the guest writes in between is
    /// in the dirty log, and goes again).
    void add(uint64_t address, const uint8_t* data);
    bool full() const { return m_pages.size() == k_max_pages_per_record; }
    bool empty() const { return m_pages.empty(); }
    /// The PAGE record of the pages added since the last take(); empties the batch.
    std::vector<uint8_t> take();

private:
    std::vector<std::pair<uint64_t, const uint8_t*>> m_pages;  // address and flags, bytes or null
};

/// What apply_page_record() put into guest memory.
struct PageCounts {
    uint64_t pages = 0;       ///< pages whose data was sent
    uint64_t zero_pages = 0;  ///< pages sent as zero
};

/// Checks a PAGE record and copies its pages into `memory`. Every address comes from the peer:
/// it must be page-aligned with no unknown flag bits, and a whole page of guest RAM
/// (GuestMemory::host_pointer checks the bounds) before a byte is written. Stops at the first
/// bad entry (pages before it are written: the destination discards the whole VM on an error).
Result<PageCounts> apply_page_record(const Record& record, const GuestMemory& memory);

/// Sends all of `bytes` on the stream socket `fd` (EINTR retried; a peer that went away is
/// EPIPE, not SIGPIPE).
Result<void> send_all(int fd, std::span<const uint8_t> bytes);
/// Reads the next record from `fd`: refuses a length above k_max_record_bytes before reading
/// the payload, and an end of stream inside a record ("truncated").
Result<Record> receive_record(int fd, const std::string& peer);
/// The same into `record`, whose buffer is reused: a stream of same-sized PAGE records is then
/// received without allocating and zero-filling a megabyte per record.
Result<void> receive_record_into(int fd, const std::string& peer, Record& record);

}  // namespace corral::vmm::migration
