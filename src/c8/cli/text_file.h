// Reads a whole text file for calibration / evaluation commands.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "c8/util/status.h"

namespace c8::cli {

inline Result<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().empty()) return Error(path + ": empty file");
  return ss.str();
}

}  // namespace c8::cli
