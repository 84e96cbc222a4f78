#include "engine/duplicate_list.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace embgeom::engine {

float duplicate_min(double t) {
    if (std::isnan(t) || t > std::numeric_limits<float>::max())
        return std::numeric_limits<float>::infinity();
    float f = static_cast<float>(t);
    if (static_cast<double>(f) < t) f = std::nextafter(f, std::numeric_limits<float>::infinity());
    return f;
}
namespace {

bool pair_less(const DuplicatePair& a, const DuplicatePair& b) {
    return a.i != b.i ? a.i < b.i : a.j < b.j;
}

}  // namespace

void DuplicateList::trim() {
    if (static_cast<std::int64_t>(pairs_.size()) <= cap_) return;
    std::nth_element(pairs_.begin(), pairs_.begin() + cap_, pairs_.end(), pair_less);
    pairs_.resize(static_cast<std::size_t>(cap_));
    truncated_ = true;
}

void DuplicateList::absorb(DuplicateList& other) {
    pairs_.insert(pairs_.end(), other.pairs_.begin(), other.pairs_.end());
    truncated_ = truncated_ || other.truncated_;
    other.pairs_.clear();
    other.truncated_ = false;
    trim();
}

std::vector<DuplicatePair> DuplicateList::finish(bool* truncated) {
    trim();
    std::sort(pairs_.begin(), pairs_.end(), pair_less);
    if (truncated) *truncated = truncated_;
    std::vector<DuplicatePair> out;
    out.swap(pairs_);
    truncated_ = false;
    return out;
}

}  // namespace embgeom::engine
