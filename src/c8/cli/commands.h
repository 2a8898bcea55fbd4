// The `c8` subcommands. Each Register* adds its subcommand to the app and returns the
// function that runs it once parsed (exit code).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace c8::cli {

using Runner = std::function<int()>;

Runner RegisterConvert(CLI::App& app);
Runner RegisterGenerate(CLI::App& app);
Runner RegisterCalibrate(CLI::App& app);
Runner RegisterEval(CLI::App& app);
Runner RegisterBenchServe(CLI::App& app);

}  // namespace c8::cli
