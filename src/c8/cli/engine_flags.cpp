#include "c8/cli/engine_flags.h"

namespace c8::cli {

void EngineFlags::Add(CLI::App* sub) {
  sub->add_option("--device", device, "auto | cpu | cuda")->capture_default_str();
  sub->add_option("--threads", threads, "CPU threads (0 = all cores; shared by the ranks)")
      ->capture_default_str();
  sub->add_option("--tensor-parallel-size", tensor_parallel_size,
                  "Tensor-parallel ranks: one per GPU (NCCL), or CPU workers sharing the cores")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  sub->add_option("--kv-cache-dtype", kv_cache_dtype,
                  "KV cache dtype: auto (what the checkpoint says) | bf16 | fp32 | int8")
      ->capture_default_str();
  sub->add_option("--max-model-len", max_model_len,
                  "Context length (0 = the model's, capped at 32768)");
  sub->add_option("--block-size", block_size, "KV cache block size (multiple of 16)")
      ->capture_default_str();
  sub->add_option("--kv-cache-memory", kv_cache_gib,
                  "KV cache size in GiB (0 = just one full context; default: 1 GiB on the CPU, "
                  "--gpu-memory-utilization on a GPU)");
  sub->add_option("--gpu-memory-utilization", gpu_memory_utilization,
                  "Fraction of GPU memory for weights, activations and the KV cache")
      ->capture_default_str();
  sub->add_option("--max-num-seqs", max_num_seqs, "Most sequences in one step")
      ->capture_default_str();
  sub->add_option("--max-num-batched-tokens", max_num_batched_tokens,
                  "Token budget of one step (prefill chunks + decode tokens)")
      ->capture_default_str();
  sub->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", prefix_caching,
                "Prefix caching (on by default)");
  sub->add_flag("--enforce-eager", enforce_eager, "Run decode steps eagerly (no CUDA graphs)");
  sub->add_option("--load-format", load_format,
                  "auto (safetensors) | dummy (seeded random weights from config.json alone)")
      ->capture_default_str();
  sub->add_option(
         "--quantization", quantization,
         "Linear weights of --load-format dummy: none | w8a8 | w8a8_dynamic (a checkpoint's "
         "own scheme comes from its quant_model_description.json)")
      ->check(CLI::IsMember({"none", "w8a8", "w8a8_dynamic"}));
}

EngineOptions EngineFlags::ToEngineOptions(const std::string& model_dir, bool progress) const {
  EngineOptions eo;
  eo.model_dir = model_dir;
  eo.backend.device = device;
  eo.backend.num_threads = threads;
  eo.tensor_parallel_size = tensor_parallel_size;
  eo.kv_cache_dtype = kv_cache_dtype;
  eo.max_model_len = max_model_len;
  eo.block_size = block_size;
  eo.kv_cache_gib = kv_cache_gib;
  eo.gpu_memory_utilization = gpu_memory_utilization;
  eo.max_num_batched_tokens = max_num_batched_tokens;
  eo.max_num_seqs = max_num_seqs;
  eo.load_format = load_format;
  eo.quantization = quantization;
  eo.seed = seed;
  eo.enforce_eager = enforce_eager;
  if (progress) eo.progress = StderrProgress();
  return eo;
}

EngineConfig EngineFlags::ToEngineConfig(int64_t model_max_len) const {
  EngineConfig ec;
  ec.scheduler.max_num_seqs = max_num_seqs;
  ec.scheduler.max_num_batched_tokens = max_num_batched_tokens;
  ec.scheduler.max_model_len = static_cast<int32_t>(model_max_len);
  ec.enable_prefix_caching = prefix_caching;
  return ec;
}

}  // namespace c8::cli
