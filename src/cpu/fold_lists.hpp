#pragma once
// Per-thread partial top-K lists of the CPU all-pairs fold, laid out for its insertion pattern.
//
// Same contents as engine::TopKLists (one list per local row, best K under the total order of
// topk_lists.hpp: higher similarity first, equal similarities by lower index), but:
//  - indices are int32 *local* row indices of the current block pair. Local order is global order
//    (the rows of block I precede those of block J), so ties break the same way; the merge into
//    the global lists maps them back.
//  - each list is one record, similarities then indices, of k rounded up to a power of two slots
//    (to a multiple of 16 above 16), in a 64-byte aligned array: a list of up to 16 slots spans
//    one or two cache lines instead of the three or four that a [rows, k] float array plus an
//    int64 array touch. Column-side insertions land on 512 different lists per tile, so lines per
//    list is what their cache misses scale with. A record takes 8 bytes per slot (TopKLists: 12 per
//    slot), so at most 128 bytes for k = 9..16.
//  - besides the scalar insertion there is a branch-free AVX-512 one for k <= 16: the branchy
//    shift loop mispredicts on nearly every insertion, and most candidates that pass the fold's
//    filter are inserted.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EMBGEOM_FOLD_AVX512 1
#define EMBGEOM_FOLD_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#endif

#include "embgeom/errors.hpp"
#include "engine/topk_lists.hpp"

namespace embgeom::cpu {

class FoldLists {
  public:
    static constexpr std::int32_t kEmpty = std::numeric_limits<std::int32_t>::max();
    static constexpr int kVectorSlots = 16;  ///< longest list offer_avx512 handles

    explicit FoldLists(std::int64_t k = 1) : k_(k), slots_(slots_for(k)) {}

    std::int64_t k() const { return k_; }

    /// Empties `rows` lists (storage grows as needed, never shrinks).
    void reset(std::int64_t rows) {
        if (rows > std::numeric_limits<std::int32_t>::max())
            throw ResourceError("cpu all-pairs: more than 2^31 rows in one block pair");
        const std::size_t bytes = static_cast<std::size_t>(rows) * record_bytes();
        if (bytes > capacity_) {
            void* p = std::aligned_alloc(64, std::max<std::size_t>(64, (bytes + 63) / 64 * 64));
            if (!p)
                throw ResourceError("cpu all-pairs: out of memory (" + std::to_string(bytes) +
                                    " bytes)");
            data_.reset(static_cast<char*>(p));
            capacity_ = bytes;
        }
        for (std::int64_t r = 0; r < rows; ++r) {
            float* s = sims(r);
            std::int32_t* x = indices(r);
            for (std::int64_t p = 0; p < slots_; ++p) {
                s[p] = -std::numeric_limits<float>::infinity();
                x[p] = kEmpty;
            }
        }
    }

    float* sims(std::int64_t r) { return reinterpret_cast<float*>(record(r)); }
    std::int32_t* indices(std::int64_t r) {
        return reinterpret_cast<std::int32_t*>(record(r) + slots_ * sizeof(float));
    }
    const float* sims(std::int64_t r) const { return const_cast<FoldLists*>(this)->sims(r); }
    const std::int32_t* indices(std::int64_t r) const {
        return const_cast<FoldLists*>(this)->indices(r);
    }

    /// Similarity of the worst kept slot (-inf while the list is not full).
    float threshold(std::int64_t r) const { return sims(r)[k_ - 1]; }

    /// Brings the records of lists [r0, r0 + n) towards the cache ahead of their insertions.
    void prefetch(std::int64_t r0, std::int64_t n) const {
        const char* p = record(r0);
        const char* const end = record(r0 + n);
        for (; p < end; p += 64) __builtin_prefetch(p, 1, 3);
    }

    /// Inserts (sim, index) into list r when it ranks before the worst slot; on insertion sets
    /// *threshold to the list's new threshold and returns true.
    bool offer(std::int64_t r, float sim, std::int32_t index, float* threshold) {
        float* s = sims(r);
        if (!engine::insert_ranked(s, indices(r), k_, sim, index)) return false;
        *threshold = s[k_ - 1];
        return true;
    }

#if defined(EMBGEOM_FOLD_AVX512)
// GCC 12 warns "may be used uninitialized" inside its own AVX-512 intrinsic headers (GCC bug
// 105593, fixed in 12.3).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
    /// offer() for k <= kVectorSlots on a CPU with AVX-512: the insertion position is the number
    /// of slots ranking before the candidate (a prefix, the list being sorted), and the slots
    /// from there on move down one lane in a permute.
    EMBGEOM_FOLD_AVX512_TARGET bool offer_avx512(std::int64_t r, float sim, std::int32_t index,
                                                 float* threshold) {
        float* s = sims(r);
        std::int32_t* x = indices(r);
        // A record of fewer than 16 slots is read and written under a mask (lanes past it load 0
        // and are neither compared nor stored); full records without one, which measured faster.
        const bool full = slots_ == kVectorSlots;
        const __mmask16 slots = static_cast<__mmask16>((1u << slots_) - 1);
        const __m512 vs = full ? _mm512_load_ps(s) : _mm512_maskz_loadu_ps(slots, s);
        const __m512i vx = full ? _mm512_load_si512(x) : _mm512_maskz_loadu_epi32(slots, x);
        const __m512 cs = _mm512_set1_ps(sim);
        const __m512i cx = _mm512_set1_epi32(index);
        const __mmask16 live = static_cast<__mmask16>((1u << k_) - 1);
        const __mmask16 before =
            (_mm512_cmp_ps_mask(vs, cs, _CMP_GT_OQ) |
             (_mm512_cmp_ps_mask(vs, cs, _CMP_EQ_OQ) & _mm512_cmplt_epi32_mask(vx, cx))) &
            live;
        const unsigned pos = static_cast<unsigned>(__builtin_popcount(before));
        if (pos >= static_cast<unsigned>(k_)) return false;
        const __m512i prev = _mm512_set_epi32(14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0);
        const __mmask16 below = static_cast<__mmask16>(~0u << (pos + 1));
        const __mmask16 at = static_cast<__mmask16>(1u << pos);
        const __m512 ns =
            _mm512_mask_mov_ps(_mm512_mask_permutexvar_ps(vs, below, prev, vs), at, cs);
        const __m512i nx =
            _mm512_mask_mov_epi32(_mm512_mask_permutexvar_epi32(vx, below, prev, vx), at, cx);
        if (full) {
            _mm512_store_ps(s, ns);
            _mm512_store_si512(x, nx);
        } else {
            _mm512_mask_storeu_ps(s, slots, ns);
            _mm512_mask_storeu_epi32(x, slots, nx);
        }
        // From the register rather than reloading the line just stored.
        *threshold = _mm512_cvtss_f32(
            _mm512_permutexvar_ps(_mm512_set1_epi32(static_cast<int>(k_ - 1)), ns));
        return true;
    }
#pragma GCC diagnostic pop
#endif

  private:
    static std::int64_t slots_for(std::int64_t k) {
        if (k > kVectorSlots) return (k + kVectorSlots - 1) / kVectorSlots * kVectorSlots;
        std::int64_t s = 1;
        while (s < k) s *= 2;
        return s;
    }
    static bool ranks_before(float sa, std::int32_t ia, float sb, std::int32_t ib) {
        return sa > sb || (sa == sb && ia < ib);
    }
    std::size_t record_bytes() const {
        return static_cast<std::size_t>(slots_) * (sizeof(float) + sizeof(std::int32_t));
    }
    char* record(std::int64_t r) const {
        return data_.get() + static_cast<std::size_t>(r) * record_bytes();
    }

    struct Free {
        void operator()(char* p) const noexcept { std::free(p); }
    };
    std::int64_t k_ = 1;
    std::int64_t slots_ = 1;
    std::unique_ptr<char, Free> data_;
    std::size_t capacity_ = 0;
};

}  // namespace embgeom::cpu
