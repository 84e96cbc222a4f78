#include "cli/cli.hpp"

namespace embgeom {
int run_cli(int, char**) { return 0; }  // placeholder until the CLI lands
}  // namespace embgeom
