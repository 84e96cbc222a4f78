#pragma once
// Stands in for the toolkit's header when kernels/ is compiled for the kernel emulator.
#include "emulated_device.h"
