#pragma once
// Stands in for the toolkit's header in the emulated builds: the runtime's host API and, for the
// kernels, CUDA's device language.
#include "emulated_device.h"
#include "emulated_runtime.h"
