// `analyze --config FILE.toml`: the file's keys become options placed before the command line's;
// keys whose option the command line also gives are left out, so the command line wins. CLI11 2.1's own config support
// only reads sections of the main app; a flat file per job is what users write, hence this.
#include <CLI/CLI.hpp>

#include <algorithm>

#include "cli/cli.hpp"
#include "embgeom/errors.hpp"

namespace embgeom {
namespace {

bool is_config_flag(const std::string& a) { return a == "--config" || a.rfind("--config=", 0) == 0; }

}  // namespace

std::vector<std::string> expand_config_file(CLI::App& app, const std::vector<std::string>& args) {
    const auto sub_it = std::find(args.begin(), args.end(), "analyze");
    if (sub_it == args.end()) return args;
    const std::size_t sub = static_cast<std::size_t>(sub_it - args.begin());
    std::vector<std::string> rest;
    std::string path;
    for (std::size_t i = sub + 1; i < args.size(); ++i) {
        if (!is_config_flag(args[i])) {
            rest.push_back(args[i]);
            continue;
        }
        if (!path.empty()) throw UsageError("--config given more than once");
        if (args[i] == "--config") {
            if (i + 1 >= args.size()) throw UsageError("--config needs a file name");
            path = args[++i];
        } else {
            path = args[i].substr(9);
        }
    }
    if (path.empty()) return args;

    CLI::App* analyze = app.get_subcommand("analyze");
    std::vector<CLI::ConfigItem> items;
    try {
        items = CLI::ConfigTOML().from_file(path);
    } catch (const CLI::FileError&) {
        throw UsageError("config " + path + ": cannot read the file (missing or unreadable?)");
    } catch (const std::exception& e) {
        throw UsageError("config " + path + ": " + e.what());
    }
    // Options given on the command line win: their config keys are left out entirely, which
    // also gives list options (--reference-ids, --null) replace-not-append semantics.
    std::vector<const CLI::Option*> on_command_line;
    for (const std::string& a : rest) {
        if (a.size() < 2 || a[0] != '-') continue;
        const std::string name = a.substr(0, a.find('='));
        if (const CLI::Option* o = analyze->get_option_no_throw(name)) on_command_line.push_back(o);
    }
    std::vector<std::string> injected;
    for (const CLI::ConfigItem& item : items) {
        if (item.name == "++" || item.name == "--") continue;  // CLI11's section open/close markers
        const bool in_analyze_section = item.parents.size() == 1 && item.parents[0] == "analyze";
        if (!item.parents.empty() && !in_analyze_section)
            throw UsageError("config " + path + ": unknown section [" + item.parents[0] +
                             "] (keys go at the top level or under [analyze])");
        std::string key = item.name;
        std::replace(key.begin(), key.end(), '_', '-');
        if (key == "config") throw UsageError("config " + path + ": 'config' cannot be set in a config file");
        if (analyze->get_option_no_throw("--" + key) == nullptr)
            throw UsageError("config " + path + ": unknown key '" + item.name + "' (see embgeom analyze --help)");
        const CLI::Option* option = analyze->get_option_no_throw("--" + key);
        if (std::find(on_command_line.begin(), on_command_line.end(), option) != on_command_line.end())
            continue;
        if (item.inputs.size() == 1) {
            injected.push_back("--" + key + "=" + item.inputs[0]);
        } else {
            injected.push_back("--" + key);
            injected.insert(injected.end(), item.inputs.begin(), item.inputs.end());
        }
    }
    std::vector<std::string> out(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(sub) + 1);
    out.insert(out.end(), injected.begin(), injected.end());
    out.insert(out.end(), rest.begin(), rest.end());
    return out;
}

}  // namespace embgeom
