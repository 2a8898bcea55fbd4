// The `c8` subcommands. Each Register* adds its subcommand to the app and returns the
// function that runs it once parsed (exit code), or kNotParsed when the command line named
// another subcommand.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace c8::cli {

using Runner = std::function<int()>;
inline constexpr int kNotParsed = -1000;

Runner RegisterConvert(CLI::App& app);
Runner RegisterGenerate(CLI::App& app);
Runner RegisterCalibrate(CLI::App& app);
Runner RegisterQuantize(CLI::App& app);
Runner RegisterEval(CLI::App& app);
Runner RegisterBenchServe(CLI::App& app);
Runner RegisterBenchOffline(CLI::App& app);  // bench throughput, bench latency
Runner RegisterServe(CLI::App& app);
// The `bench` subcommand (created on first use).
CLI::App* BenchCommand(CLI::App& app);

}  // namespace c8::cli
