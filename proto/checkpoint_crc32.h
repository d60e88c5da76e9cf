// The CRC-32 that CheckpointChunk.crc32 carries (zlib's), in one place for
// both ends of a checkpoint transfer: the worker agent and the coordinator.

#ifndef SSLSWEEP_PROTO_CHECKPOINT_CRC32_H_
#define SSLSWEEP_PROTO_CHECKPOINT_CRC32_H_

#include <zlib.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace sslsweep {

// zlib's CRC-32 of `data`, continuing from `crc` (0 to start).
inline uint32_t CheckpointCrc32(uint32_t crc, absl::string_view data) {
  // zlib takes lengths as uInt: feed huge inputs in pieces.
  while (!data.empty()) {
    const size_t n = std::min<size_t>(data.size(), size_t{1} << 30);
    crc = static_cast<uint32_t>(
        ::crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(n)));
    data.remove_prefix(n);
  }
  return crc;
}

}  // namespace sslsweep

#endif  // SSLSWEEP_PROTO_CHECKPOINT_CRC32_H_
