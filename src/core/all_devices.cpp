#include "core/all_devices.hpp"

#include <algorithm>
#include <map>
#include <tuple>

namespace embgeom {
namespace {

using ModelKey = std::tuple<std::string, int, int>;

ModelKey model_of(const DeviceModel& d) { return {d.name, d.major, d.minor}; }

std::string capability(const DeviceModel& d) {
    return std::to_string(d.major) + "." + std::to_string(d.minor);
}

std::string devices_word(std::size_t n) { return n == 1 ? "device " : "devices "; }

}  // namespace

std::string device_ids_text(const std::vector<int>& ids) {
    std::string s = devices_word(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s;
}

AllDevicesChoice choose_all_devices(const std::vector<DeviceModel>& devices) {
    std::vector<DeviceModel> sorted = devices;
    std::sort(sorted.begin(), sorted.end(),
              [](const DeviceModel& a, const DeviceModel& b) { return a.id < b.id; });

    // Usable devices per model, in id order; the first model reached wins a tie.
    std::map<ModelKey, std::vector<int>> by_model;
    std::vector<ModelKey> model_order;
    for (const DeviceModel& d : sorted) {
        if (!d.runs_build) continue;
        auto [it, fresh] = by_model.try_emplace(model_of(d));
        if (fresh) model_order.push_back(it->first);
        it->second.push_back(d.id);
    }
    AllDevicesChoice choice;
    const ModelKey* chosen_model = nullptr;
    for (const ModelKey& key : model_order)
        if (by_model[key].size() > choice.ids.size()) {
            choice.ids = by_model[key];
            chosen_model = &key;
        }

    std::vector<std::string> clauses;
    std::vector<int> no_code, other_model;
    for (const DeviceModel& d : sorted) {
        if (std::find(choice.ids.begin(), choice.ids.end(), d.id) != choice.ids.end()) continue;
        (d.runs_build ? other_model : no_code).push_back(d.id);
    }
    const auto describe = [&](const std::vector<int>& ids) {
        std::string s = devices_word(ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const DeviceModel& d = *std::find_if(sorted.begin(), sorted.end(),
                                                 [&](const DeviceModel& m) { return m.id == ids[i]; });
            s += (i ? ", " : "") + std::to_string(d.id) + " (" + d.name + ", compute capability " +
                 capability(d) + ")";
        }
        return s;
    };
    if (!no_code.empty())
        clauses.push_back(describe(no_code) + ": this build has no code for " +
                          (no_code.size() == 1 ? "it" : "them"));
    if (!other_model.empty())
        clauses.push_back(describe(other_model) + ": another model than " +
                          device_ids_text(choice.ids) + " (" +
                          std::get<0>(*chosen_model) + "), whose results " +
                          (other_model.size() == 1 ? "it" : "they") +
                          " would not match bit for bit");
    for (const std::string& c : clauses)
        choice.left_out += (choice.left_out.empty() ? "" : "; ") + c;
    return choice;
}

}  // namespace embgeom
