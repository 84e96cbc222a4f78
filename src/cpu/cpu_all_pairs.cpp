#include "cpu/cpu_all_pairs.hpp"

#include "embgeom/errors.hpp"

namespace embgeom {

AllPairsResult cpu_all_pairs(RowSource&, const std::vector<std::uint8_t>&, const AllPairsOptions&,
                             int) {
    throw ResourceError("cpu_all_pairs: not implemented yet");  // placeholder, replaced by the engine
}

}  // namespace embgeom
