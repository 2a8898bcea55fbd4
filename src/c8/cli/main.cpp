// c8: an LLM serving engine with an INT8 (C8) KV cache.
#include <cstdio>
#include <string>
#include <vector>

#include "c8/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"c8 " C8_VERSION
               " - LLM serving engine with a C8 (INT8, static per-channel) KV cache"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "c8 " C8_VERSION);
  std::vector<c8::cli::Runner> runners;
  auto add = [&](c8::cli::Runner r) { runners.push_back(std::move(r)); };
  add(c8::cli::RegisterConvert(app));
  add(c8::cli::RegisterGenerate(app));
  add(c8::cli::RegisterCalibrate(app));
  add(c8::cli::RegisterQuantize(app));
  add(c8::cli::RegisterEval(app));
  add(c8::cli::RegisterBenchServe(app));
  add(c8::cli::RegisterBenchOffline(app));
  add(c8::cli::RegisterServe(app));
  // vLLM's short spelling -tp N / -tp=N (CLI11 takes only one-letter short names).
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-tp") a = "--tensor-parallel-size";
    if (a.rfind("-tp=", 0) == 0) a = "--tensor-parallel-size=" + a.substr(4);
    args.push_back(std::move(a));
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11's order
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& run : runners) {
    const int rc = run();
    if (rc != c8::cli::kNotParsed) return rc;
  }
  std::fprintf(stderr, "%s", app.help().c_str());
  return 2;
}
