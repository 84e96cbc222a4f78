#pragma once
// The near-duplicate pair list, bounded and deterministic: whatever order pairs arrive in, the
// result is the first `cap` pairs by (i, j), with `truncated` set when more qualified. Each
// worker fills its own list; lists are then combined. Host-only.
#include <cstdint>
#include <vector>

#include "embgeom/backend.hpp"

namespace embgeom::engine {

/// The duplicate test in float on every backend: v >= duplicate_min(t) <=> (double)v >= t. The
/// smallest float at least t (+inf for NaN and for t above the largest float).
float duplicate_min(double threshold);

class DuplicateList {
  public:
    explicit DuplicateList(std::int64_t cap = 0) : cap_(cap < 0 ? 0 : cap) {}

    void add(std::int64_t i, std::int64_t j, float cosine) {
        pairs_.push_back({i, j, cosine});
        // Keep memory O(cap): trim to the cap smallest once the list holds twice as many.
        if (static_cast<std::int64_t>(pairs_.size()) >= 2 * cap_ + 1024) trim();
    }

    /// Moves other's pairs in (other is left empty).
    void absorb(DuplicateList& other);

    /// Sorts by (i, j) and cuts to the cap; returns the pairs and sets *truncated.
    std::vector<DuplicatePair> finish(bool* truncated);

  private:
    void trim();

    std::int64_t cap_;
    bool truncated_ = false;
    std::vector<DuplicatePair> pairs_;
};

}  // namespace embgeom::engine
