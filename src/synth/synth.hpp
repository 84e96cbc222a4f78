#pragma once
// Synthetic embedding tables with known answers: the isotropic Gaussian null model, and a
// trained-like table (bias offset, simplex mixture, planted under-trained tokens at the centre of
// the cloud, planted near-duplicate pairs) whose truth is stored beside it.
#include <cstdint>
#include <string>
#include <vector>

namespace embgeom {

enum class SynthKind { kGaussian, kTrained };

/// How /embeddings is stored. The table is generated in float32 either way; float16 (IEEE
/// binary16) and bfloat16 are rounded to nearest even when written, as checkpoints store them.
enum class SynthDtype { kFloat32, kFloat16, kBFloat16 };

struct SynthSpec {
    SynthKind kind = SynthKind::kTrained;
    std::int64_t rows = 20000;
    std::int64_t dims = 256;
    std::uint64_t seed = 1;
    std::int64_t undertrained = -1;  ///< planted centre tokens; -1 = max(8, rows / 500)
    std::int64_t duplicate_pairs = -1;  ///< planted near-duplicates; -1 = max(4, rows / 2000)
    SynthDtype dtype = SynthDtype::kFloat32;  ///< element type of /embeddings in the file
};

struct SynthTable {
    std::int64_t rows = 0, dims = 0;
    std::vector<float> data;                 ///< [rows, dims] row-major
    std::vector<std::string> vocab;          ///< [rows]
    std::vector<double> bias;                ///< [dims] offset of the cloud (zeros for gaussian)
    std::vector<std::int64_t> undertrained;  ///< planted ids, ascending
    std::vector<std::int64_t> duplicate_pairs;  ///< [P, 2] (original, copy)
    std::int64_t simplex_vertices = 0;
};

/// @throws UsageError for rows < 2 or dims < 1, or when the planted sets do not fit.
SynthTable synthesize(const SynthSpec& spec);

/// Writes /embeddings [V, d] (spec.dtype, little-endian, contiguous; 16-bit types as HDF5 float
/// types with the bit fields io::classify_float16 recognises, converted and written in row blocks
/// of at most 4 MiB so no second full-size copy is made), /vocab (UTF-8 strings), /bias [d]
/// float64, /truth/undertrained, /truth/duplicate_pairs [P, 2], root attributes kind, dtype,
/// seed, rows, dims, simplex_vertices. Atomic: nothing appears at path unless every write
/// succeeded, and an existing file there is untouched on failure.
/// @throws ResourceError naming path when the folder is missing or unwritable or a write fails.
void write_synth_file(const SynthTable& table, const SynthSpec& spec, const std::string& path);

const char* to_string(SynthKind k);
const char* to_string(SynthDtype t);  ///< "float32", "float16", "bfloat16"

}  // namespace embgeom
