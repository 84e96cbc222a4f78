#pragma once
// The simplex analyses in one include. Trained embedding tables fill a high-dimensional simplex
// whose corners hold the most specific tokens and whose centre is offset from the origin by a
// bias; PCA and t-SNE hide it, the plane through three real vertices shows it.
//
//   spa_vertices                  K vertices by the (affine) Successive Projection Algorithm
//   random_direction_extremeness  per-token counts of being extreme along random directions
//   project_onto_vertex_plane     every token in the plane through three vertices
//   simplex_corners               per-vertex corners by least-squares barycentric weights
//
// All stream the table from a RowSource in row blocks (never holding it), skip rows whose valid
// entry is 0, and give bit-identical results for any block size and thread count.
#include "geometry/extremeness.hpp"
#include "geometry/simplex_corners.hpp"
#include "geometry/simplex_projection.hpp"
#include "geometry/simplex_row_tiles.hpp"
#include "geometry/simplex_vertices.hpp"
