#include "c8/bench/arrival_schedule.h"

#include <cmath>
#include <random>

namespace c8::bench {

std::vector<double> ArrivalTimes(int64_t num_requests, double request_rate, double burstiness,
                                 uint64_t seed) {
  std::vector<double> t(static_cast<size_t>(std::max<int64_t>(num_requests, 0)), 0.0);
  if (t.empty() || std::isinf(request_rate) || request_rate <= 0) return t;
  std::mt19937_64 rng(seed);
  if (std::isinf(burstiness)) {
    for (double& d : t) d = 1.0 / request_rate;
  } else {
    std::gamma_distribution<double> gamma(burstiness, 1.0 / (request_rate * burstiness));
    for (double& d : t) d = gamma(rng);
  }
  for (size_t i = 1; i < t.size(); ++i) t[i] += t[i - 1];
  if (t.back() != 0) {
    const double scale = (static_cast<double>(num_requests) / request_rate) / t.back();
    for (double& d : t) d *= scale;
  }
  return t;
}

}  // namespace c8::bench
