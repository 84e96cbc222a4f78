#pragma once
// The command line: `embgeom analyze|synth|inspect|demo`. build_cli is separate from main so the
// tests can parse argument lists and config files exactly as the binary does.
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace embgeom {

/// Parses argv, runs the chosen subcommand, prints errors as one line; returns the exit code.
int run_cli(int argc, char** argv);

}  // namespace embgeom
