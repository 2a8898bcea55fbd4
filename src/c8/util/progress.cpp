#include "c8/util/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

namespace c8 {

ProgressFn StderrProgress() {
  struct State {
    std::chrono::steady_clock::time_point last{};
    int last_decile = -1;
    bool tty = isatty(2);
  };
  auto st = std::make_shared<State>();
  return [st](int64_t done, int64_t total, const std::string& label) {
    auto now = std::chrono::steady_clock::now();
    bool finished = total > 0 && done >= total;
    if (st->tty) {
      if (!finished && now - st->last < std::chrono::milliseconds(100)) return;
      st->last = now;
      int width = 30;
      int fill = total > 0 ? static_cast<int>(width * done / total) : 0;
      std::string bar(fill, '=');
      if (fill < width) bar += '>' + std::string(width - fill - 1, ' ');
      std::fprintf(stderr, "\r%s [%s] %lld/%lld", label.c_str(), bar.c_str(),
                   static_cast<long long>(done), static_cast<long long>(total));
      if (finished) std::fprintf(stderr, "\n");
    } else {
      int decile = total > 0 ? static_cast<int>(10 * done / total) : 0;
      if (decile == st->last_decile && !finished) return;
      st->last_decile = decile;
      std::fprintf(stderr, "%s %lld/%lld\n", label.c_str(), static_cast<long long>(done),
                   static_cast<long long>(total));
    }
    std::fflush(stderr);
  };
}

}  // namespace c8
