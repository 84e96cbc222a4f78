#pragma once
// The memory limit of the control group this process runs in: what a batch job was given (Slurm's
// --mem, a container's --memory, a Kubernetes limit). The machine's physical memory says nothing
// about it, and a job that sizes itself from the machine is killed by the kernel when it grows
// past its group's limit (no error message, no output). Linux cgroup v2 (memory.max) and v1
// (memory.limit_in_bytes), on every level from the process's group up to the hierarchy's root,
// the smallest limit wins.
#include <cstdint>
#include <optional>
#include <string>

namespace embgeom {

/// @brief The smallest memory limit set on the groups of `cgroup_listing` (the text of
///        /proc/self/cgroup) and their ancestors, below `cgroup_root` (where the hierarchies are
///        mounted, /sys/fs/cgroup). nullopt when none is set or none can be read ("max", v1's
///        "unlimited" of ~2^63, missing files all mean no limit). Never throws.
std::optional<std::uint64_t> cgroup_memory_limit(const std::string& cgroup_listing,
                                                 const std::string& cgroup_root);

/// cgroup_memory_limit of this process (/proc/self/cgroup, /sys/fs/cgroup).
std::optional<std::uint64_t> this_process_memory_limit();

}  // namespace embgeom
