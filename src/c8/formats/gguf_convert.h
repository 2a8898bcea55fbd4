// GGUF (llama architecture, BPE "gpt2" tokenizer) -> Hugging Face model directory.
//
// Writes into out_dir:
//   config.json              LlamaForCausalLM config (torch_dtype bfloat16)
//   model.safetensors        all weights dequantized to bf16, HF names and [out, in] shapes
//   tokenizer.json           HF `tokenizers` BPE tokenizer rebuilt from tokenizer.ggml.*
//   tokenizer_config.json    chat template, special token strings, add_bos/eos flags
//   generation_config.json   bos/eos(/pad) token ids
//
// Q and K projection rows are un-permuted: llama.cpp's HF->GGUF converter reorders the rows
// of every head from HF's half-split rotary layout (pairs (j, j + hd/2)) to ggml's interleaved
// layout (pairs (2j, 2j + 1)): gguf_row[h*hd + 2j + i] = hf_row[h*hd + i*hd/2 + j]
// (i in {0,1}, j < hd/2), with n_head = num_attention_heads for Q and num_key_value_heads
// for K. We apply the inverse so that standard rotate_half RoPE reproduces the original.
//
// tokenizer.json: added_tokens = every CONTROL (special) / USER_DEFINED token; pre_tokenizer
// from tokenizer.ggml.pre: "smollm" -> Digits(individual) + ByteLevel, "gpt2"/"default"/absent
// -> ByteLevel(use_regex), "qwen2" -> Split(Qwen2 regex) + ByteLevel(no regex) with an NFC
// normalizer; anything else is an error. merges "a b" become [["a", "b"], ...].
//
// Output directory policy: created (with parents) when missing. An existing directory must
// be empty or contain only regular files with the names above (or their ".tmp" leftovers),
// which are then replaced; anything else is an error and nothing is written. Every file is
// written to "<name>.tmp" and renamed into place, so a failed conversion never leaves a
// half-written file under a final name. All metadata, tokenizer and tensor checks run before
// the first byte is written.
#pragma once

#include <cstdint>
#include <string>

#include "c8/formats/gguf.h"
#include "c8/util/progress.h"
#include "c8/util/status.h"

namespace c8 {

// Converts `gguf_path` into the HF directory `out_dir`. `progress` (may be null) is called
// once per tensor with (tensors done, tensor count, HF tensor name).
Status ConvertGgufToHf(const std::string& gguf_path, const std::string& out_dir,
                       const ProgressFn& progress);

// GGUF tensor name -> HF name ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight").
// Error (naming the tensor) for names the llama converter does not know.
Result<std::string> GgufToHfTensorName(const std::string& gguf_name);

// Row of the GGUF Q/K weight that holds HF row `hf_row` (rows = n_head * head_dim).
int64_t LlamaGgufRowForHfRow(int64_t hf_row, int64_t head_dim);

// The HF tokenizer.json text for a GGUF file's tokenizer.ggml.* metadata.
Result<std::string> BuildHfTokenizerJson(const GgufFile& file);

}  // namespace c8
