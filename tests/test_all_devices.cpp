// `--devices all`: the GPUs of one model, and a clause for the ones left out
// (core/all_devices.hpp).
#include <gtest/gtest.h>

#include <random>

#include "core/all_devices.hpp"

namespace embgeom {
namespace {

const char* kH100 = "NVIDIA H100 80GB HBM3";
const char* kA100 = "NVIDIA A100-SXM4-80GB";

DeviceModel h100(int id) { return {id, kH100, 9, 0, true}; }
DeviceModel a100(int id) { return {id, kA100, 8, 0, true}; }
DeviceModel t4(int id) { return {id, "Tesla T4", 7, 5, false}; }

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(AllDevices, OneModelTakesEveryDeviceAndLeavesNothingOut) {
    const AllDevicesChoice c = choose_all_devices({h100(0), h100(1), h100(2), h100(3)});
    EXPECT_EQ(c.ids, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(c.left_out, "");
    const AllDevicesChoice one = choose_all_devices({h100(0)});
    EXPECT_EQ(one.ids, (std::vector<int>{0}));
    EXPECT_EQ(one.left_out, "");
}

TEST(AllDevices, TheModelMostDevicesAreWinsAndTheOthersAreNamed) {
    const AllDevicesChoice c = choose_all_devices({a100(0), h100(1), h100(2), a100(3), h100(4)});
    EXPECT_EQ(c.ids, (std::vector<int>{1, 2, 4}));
    EXPECT_TRUE(has(c.left_out, std::string("devices 0 (") + kA100 + ", compute capability 8.0), 3 ("))
        << c.left_out;
    EXPECT_TRUE(has(c.left_out, std::string("another model than devices 1,2,4 (") + kH100 + ")"))
        << c.left_out;
    EXPECT_TRUE(has(c.left_out, "bit for bit")) << c.left_out;
}

TEST(AllDevices, ATieGoesToTheModelOfTheLowestId) {
    EXPECT_EQ(choose_all_devices({a100(0), h100(1)}).ids, (std::vector<int>{0}));
    EXPECT_EQ(choose_all_devices({h100(0), a100(1), a100(2), h100(3)}).ids,
              (std::vector<int>{0, 3}));
    // Same name, another capability (a MIG-less rename is not a model): two models.
    DeviceModel odd = h100(1);
    odd.minor = 1;
    const AllDevicesChoice c = choose_all_devices({h100(0), odd});
    EXPECT_EQ(c.ids, (std::vector<int>{0}));
    EXPECT_TRUE(has(c.left_out, "device 1 (")) << c.left_out;
    EXPECT_TRUE(has(c.left_out, "compute capability 9.1")) << c.left_out;
}

TEST(AllDevices, DevicesWithoutCodeInTheBuildNeverCountEvenWhenTheyAreMost) {
    const AllDevicesChoice c = choose_all_devices({t4(0), t4(1), t4(2), a100(3)});
    EXPECT_EQ(c.ids, (std::vector<int>{3}));
    EXPECT_TRUE(has(c.left_out, "devices 0 (Tesla T4, compute capability 7.5), 1 (")) << c.left_out;
    EXPECT_TRUE(has(c.left_out, "this build has no code for them")) << c.left_out;
    EXPECT_FALSE(has(c.left_out, "another model")) << c.left_out;

    const AllDevicesChoice none = choose_all_devices({t4(0)});
    EXPECT_TRUE(none.ids.empty());
    EXPECT_TRUE(has(none.left_out, "device 0 (Tesla T4, compute capability 7.5): this build has "
                                   "no code for it"))
        << none.left_out;
    EXPECT_TRUE(choose_all_devices({}).ids.empty());
    EXPECT_EQ(choose_all_devices({}).left_out, "");
}

TEST(AllDevices, BothReasonsInOneClauseEach) {
    const AllDevicesChoice c = choose_all_devices({h100(0), t4(1), a100(2), h100(3)});
    EXPECT_EQ(c.ids, (std::vector<int>{0, 3}));
    EXPECT_TRUE(has(c.left_out, "device 1 (Tesla T4, compute capability 7.5): this build has no "
                                "code for it; device 2 ("))
        << c.left_out;
    EXPECT_EQ(c.left_out.find('\n'), std::string::npos);
}

// Any machine: the ids are ascending, every chosen device is of one model and runs the build,
// every device is either chosen or named, and the order the runtime lists them in is irrelevant.
TEST(AllDevices, RandomMachinesKeepTheRules) {
    std::mt19937 rng(20261207);
    const DeviceModel kinds[] = {h100(0), a100(0), t4(0), {0, "NVIDIA L4", 8, 9, true}};
    for (int trial = 0; trial < 500; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 8);
        std::vector<DeviceModel> machine;
        for (int id = 0; id < n; ++id) {
            DeviceModel d = kinds[rng() % 4];
            d.id = id;
            machine.push_back(d);
        }
        const AllDevicesChoice c = choose_all_devices(machine);
        std::vector<DeviceModel> shuffled = machine;
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        const AllDevicesChoice again = choose_all_devices(shuffled);
        EXPECT_EQ(again.ids, c.ids);
        EXPECT_EQ(again.left_out, c.left_out);
        EXPECT_TRUE(std::is_sorted(c.ids.begin(), c.ids.end()));
        std::size_t best = 0;
        for (const DeviceModel& k : kinds) {
            std::size_t count = 0;
            for (const DeviceModel& d : machine)
                count += d.runs_build && d.name == k.name && d.major == k.major;
            best = std::max(best, count);
        }
        EXPECT_EQ(c.ids.size(), best);
        for (const int id : c.ids) {
            EXPECT_TRUE(machine[id].runs_build);
            EXPECT_EQ(machine[id].name, machine[c.ids.front()].name);
        }
        for (const DeviceModel& d : machine) {
            const bool chosen = std::find(c.ids.begin(), c.ids.end(), d.id) != c.ids.end();
            EXPECT_NE(chosen, has(c.left_out, std::to_string(d.id) + " (" + d.name +
                                                  ", compute capability"))
                << d.id << ": " << c.left_out;
        }
    }
}

}  // namespace
}  // namespace embgeom
