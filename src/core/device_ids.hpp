#pragma once
// The check of --devices ids against the usable device count, shared by the early request check
// (before a job reads its table) and the CUDA backend's constructor, so both say the same thing.
#include <string>
#include <vector>

#include "embgeom/errors.hpp"

namespace embgeom {

/// @throws ResourceError naming the first id that is not in [0, count).
inline void check_device_ids(const std::vector<int>& ids, int count) {
    for (const int d : ids)
        if (d < 0 || d >= count)
            throw ResourceError("--devices: device " + std::to_string(d) + " does not exist: " +
                                "this machine has " + std::to_string(count) +
                                " usable CUDA device" + (count == 1 ? "" : "s") + " (ids 0 to " +
                                std::to_string(count - 1) + ")");
}

}  // namespace embgeom
