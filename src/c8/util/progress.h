// Progress reporting for long work (loading, converting, calibration, benchmarks).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace c8 {

// Called with (done, total, label). A null function means "report nothing".
using ProgressFn = std::function<void(int64_t done, int64_t total, const std::string& label)>;

// A progress bar on stderr ("label [=====>    ] 42/100"), redrawn at most ~10 times a second
// and only when stderr is a terminal (otherwise a line every 10%).
ProgressFn StderrProgress();

}  // namespace c8
