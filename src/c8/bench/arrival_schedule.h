// When each request is sent, as vLLM's get_request(): with --request-rate inf every request
// goes at time 0; otherwise the gaps are Gamma(shape = burstiness, scale = 1 / (rate *
// burstiness)) samples (burstiness 1 = a Poisson process, exponential gaps; burstiness inf =
// constant gaps of 1 / rate), accumulated, then rescaled so the last request is sent at exactly
// num_requests / rate seconds.
#pragma once

#include <cstdint>
#include <vector>

namespace c8::bench {

// Send times in seconds after the benchmark start, non-decreasing, one per request.
std::vector<double> ArrivalTimes(int64_t num_requests, double request_rate, double burstiness,
                                 uint64_t seed);

}  // namespace c8::bench
