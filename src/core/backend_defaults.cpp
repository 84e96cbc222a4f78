// Out-of-line definitions of Backend's optional calls. This file also holds the class's key
// function, so its vtable lives in embgeom_core, which every target that makes a backend links.
#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"

namespace embgeom {

void Backend::rescore_candidates(RowSource&, const std::vector<std::uint8_t>&,
                                 const std::optional<std::vector<double>>&,
                                 const std::vector<std::int64_t>&, int, std::int64_t,
                                 std::int64_t*, float*) {
    throw ResourceError(name() + " has no re-scored all-pairs path: nothing to re-score");
}

}  // namespace embgeom
