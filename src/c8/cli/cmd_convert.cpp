// `c8 convert`: GGUF -> Hugging Face model directory (config.json, bf16 safetensors,
// tokenizer.json, tokenizer_config.json, generation_config.json).
#include <cstdio>
#include <memory>
#include <string>

#include "c8/cli/commands.h"
#include "c8/formats/gguf_convert.h"
#include "c8/util/progress.h"

namespace c8::cli {

Runner RegisterConvert(CLI::App& app) {
  struct Args {
    std::string gguf, out;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "convert",
      "Convert a GGUF model (e.g. SmolLM2-135M-Instruct.Q4_1.gguf) into a Hugging "
      "Face style model directory with bf16 safetensors");
  sub->add_option("--gguf", a->gguf, "Input .gguf file")->required();
  sub->add_option("--out", a->out, "Output model directory (created)")->required();
  return [a, sub]() {
    if (!sub->parsed()) return kNotParsed;
    Status st = ConvertGgufToHf(a->gguf, a->out, StderrProgress());
    if (!st.ok()) {
      std::fprintf(stderr, "c8 convert: error: %s\n", st.message().c_str());
      return 1;
    }
    std::fprintf(stderr, "c8 convert: wrote %s\n", a->out.c_str());
    return 0;
  };
}

}  // namespace c8::cli
