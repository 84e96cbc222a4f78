#pragma once
// How much of the host's memory a job may hold, and the row-block size that follows from it.
#include <cstdint>
#include <string>

namespace embgeom {

/// The physical memory, or this process's control-group memory limit where that is smaller (a
/// batch job's allocation, past which the kernel kills it).
std::uint64_t memory_this_process_may_use();

/// Default --memory-budget: half of memory_this_process_may_use(), at least 256 MiB.
std::uint64_t default_memory_budget();

/// Parses "4G", "512M", "1.5GiB", "1000000" (bytes; K/M/G/T are powers of 1024).
/// @throws UsageError naming `what` on a malformed value.
std::uint64_t parse_byte_size(const std::string& text, const std::string& what);

/// "1.50 GiB" style.
std::string format_bytes(double bytes);

}  // namespace embgeom
