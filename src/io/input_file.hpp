#pragma once
// Private to src/io: opening untrusted input files and datasets, and the checks shared by the
// table reader, the vector/string readers and `embgeom inspect`. Every failure is an InputError
// whose message starts with the file name (and the dataset path where there is one).
#include <cstdint>
#include <string>
#include <vector>

#include "io/hdf5_handle.hpp"
#include "io/table_reader.hpp"

namespace embgeom::io {

/// Opens file read-only after checking that it exists, is a regular file and is HDF5.
/// @throws InputError "FILE: no such file", "FILE: not an HDF5 file",
///         "FILE: cannot open (corrupt or truncated HDF5 file)", ...
FileHandle open_input_file(const std::string& file);

/// What the caller wants a dataset for; it picks which datasets a "no dataset" message suggests.
enum class DatasetUse { kTable, kVector, kStrings };

/// Opens dataset path (already normalised, "/a/b") in an open input file. Every link on the way
/// must be a hard or soft link inside the file (external links are refused, not followed).
/// @throws InputError "FILE: no dataset '/a/b' (datasets in this file: ...)" or
///         "FILE:/a/b is a group, not a dataset".
DatasetHandle open_input_dataset(hid_t file_id, const std::string& file, const std::string& path,
                                 DatasetUse use, hid_t dapl = H5P_DEFAULT);

/// Why the dataset's storage cannot be read safely ("" when it can): virtual layout, external
/// raw data files, or a filter this HDF5 library cannot decode.
std::string storage_problem(hid_t dataset);

/// Dimensions of a dataspace; empty for a scalar or null space.
std::vector<std::int64_t> dataspace_dims(hid_t space);

/// Why the dataset cannot be a [tokens, dims] table ("" when it can); on success *dtype is set.
/// The text follows "FILE:/path " in messages, e.g. "has rank 3, expected a 2-D [tokens, dims]
/// table".
std::string table_problem(hid_t dataset, StoredDtype* dtype);

/// Every dataset reachable by hard links, depth first in name order.
std::vector<DatasetInfo> collect_datasets(hid_t file_id);

}  // namespace embgeom::io
