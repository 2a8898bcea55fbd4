#include "c8/runner/executor.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "c8/backend/cpu/cpu_communicator.h"
#include "c8/runner/kv_layers.h"

#ifdef C8_WITH_NCCL
#include "c8/backend/cuda/nccl_communicator.h"
#endif

namespace c8 {

// One thread per rank; Run(fn) calls fn(rank) on every thread and waits for all of them.
class RankThreads {
 public:
  explicit RankThreads(int n) : status_(static_cast<size_t>(n)) {
    for (int r = 0; r < n; ++r) threads_.emplace_back([this, r] { Loop(r); });
  }
  ~RankThreads() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // Results per rank.
  std::vector<Status> Run(const std::function<Status(int)>& fn) {
    std::unique_lock<std::mutex> lock(mu_);
    job_ = &fn;
    pending_ = static_cast<int>(threads_.size());
    ++generation_;
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
    return status_;
  }

 private:
  void Loop(int rank) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<Status(int)>* job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      Status st = (*job)(rank);
      std::lock_guard<std::mutex> lock(mu_);
      status_[static_cast<size_t>(rank)] = std::move(st);
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<Status(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::vector<Status> status_;
  std::vector<std::thread> threads_;
};

Executor::~Executor() {
  if (threads_) {
    // Each rank frees its device state (graphs first, see ~Worker) on its own thread.
    std::vector<std::unique_ptr<Worker>>* workers = &workers_;
    threads_->Run([workers](int r) {
      (*workers)[static_cast<size_t>(r)].reset();
      return Status::Ok();
    });
    threads_.reset();
  } else if (!workers_.empty() && workers_[0]) {
    BindCaller();
  }
  workers_.clear();
  comms_.clear();
}

void Executor::BindCaller() {
  const std::thread::id me = std::this_thread::get_id();
  if (me == bound_thread_) return;
  workers_[0]->backend().BindThread();
  bound_thread_ = me;
}

Status Executor::SetFatal(const Status& st) {
  if (fatal_.ok()) {
    fatal_ = st.WithContext("tensor-parallel group stopped");
    std::fprintf(stderr, "c8: %s\n", fatal_.message().c_str());
  }
  return fatal_;
}

Status Executor::RunOnAll(const std::function<Status(Worker&)>& fn) {
  if (!fatal_.ok()) return fatal_;
  if (!threads_) {
    BindCaller();
    return fn(*workers_[0]);
  }
  // The rank that failed first is the cause; the others fail because it aborted the group.
  std::atomic<int> first_failed{-1};
  auto results = threads_->Run([&](int r) {
    Status st = fn(*workers_[static_cast<size_t>(r)]);
    if (!st.ok()) {
      int none = -1;
      first_failed.compare_exchange_strong(none, r);
      // Wake any rank blocked in a collective.
      if (!comms_.empty()) {
        comms_[static_cast<size_t>(r)]->Abort("rank " + std::to_string(r) + ": " + st.message());
      }
    }
    return st;
  });
  const int r = first_failed.load();
  if (r < 0) return Status::Ok();
  // A failed rank leaves the group's communicators aborted: nothing can run on it again.
  return SetFatal(
      results[static_cast<size_t>(r)].WithContext("tensor-parallel rank " + std::to_string(r)));
}

void Executor::CleanupOnAll(const std::function<void(Worker&)>& fn) {
  if (!threads_) {
    BindCaller();
    fn(*workers_[0]);
    return;
  }
  threads_->Run([&](int r) {
    fn(*workers_[static_cast<size_t>(r)]);
    return Status::Ok();
  });
}

std::string Executor::device_name() const {
  std::string name = workers_[0]->backend().Name();
  if (workers_.size() > 1) name += " x " + std::to_string(workers_.size());
  return name;
}

int64_t Executor::KvBytesPerToken() const {
  // Summed over the workers: when KV heads replicate (more ranks than KV heads) every copy
  // takes memory.
  int64_t total = 0;
  for (const auto& w : workers_) total += w->KvBytesPerBlock(layers_, 1);
  return total;
}

Result<std::unique_ptr<Executor>> Executor::Create(const EngineOptions& o) {
  const int N = o.tensor_parallel_size;
  if (N < 1) return Error("--tensor-parallel-size must be >= 1, got " + std::to_string(N));
  C8_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(o.model_dir));
  // Validate the split on the engine thread first (clear error before any device work).
  for (int r = 0; r < N; ++r) C8_RETURN_IF_ERROR(MakeShardSpec(config, r, N).status());

  ModelLoadOptions mo;
  mo.max_model_len = o.max_model_len > 0 ? o.max_model_len
                                         : std::min<int64_t>(config.max_position_embeddings, 32768);
  if (mo.max_model_len > config.max_position_embeddings &&
      config.rope_scaling.type == RopeScaling::Type::kNone) {
    return Error("--max-model-len " + std::to_string(mo.max_model_len) +
                 " exceeds max_position_embeddings " +
                 std::to_string(config.max_position_embeddings) + " of " + o.model_dir +
                 "/config.json");
  }
  mo.load_format = o.load_format;
  mo.quantization = o.quantization;
  mo.seed = o.seed;

  std::unique_ptr<Executor> ex(new Executor());
  // Backends: rank r on GPU r, or N CPU workers sharing the cores.
  std::vector<std::unique_ptr<Backend>> backends;
  for (int r = 0; r < N; ++r) {
    BackendOptions bo = o.backend;
    bo.device_index = r;
    if (N > 1) {
      const int cores = bo.num_threads > 0
                            ? bo.num_threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      bo.num_threads = std::max(1, cores / N);
    }
    if (r > 0) bo.device = backends[0]->Name();  // every rank on the same kind of device
    auto b = CreateBackend(bo);
    if (!b.ok()) {
      return b.status().WithContext("tensor-parallel rank " + std::to_string(r) + " of " +
                                    std::to_string(N));
    }
    backends.push_back(std::move(b).value());
  }
  if (N > 1) {
    const std::string kind = backends[0]->Name();
    if (kind == "cpu") {
      ex->comms_ = CreateCpuCommunicators(N);
    } else {
#ifdef C8_WITH_NCCL
      std::vector<Backend*> raw;
      for (auto& b : backends) raw.push_back(b.get());
      C8_ASSIGN_OR_RETURN(ex->comms_, CreateNcclCommunicators(raw));
#else
      return Error("--tensor-parallel-size " + std::to_string(N) + " on the " + kind +
                   " backend needs NCCL, and this build of c8 has none");
#endif
    }
    ex->threads_ = std::make_unique<RankThreads>(N);
  }
  ex->workers_.resize(static_cast<size_t>(N));
  {
    std::vector<std::unique_ptr<Backend>>* bs = &backends;
    Executor* e = ex.get();
    auto load = [&, bs, e](int r) -> Status {
      WorkerConfig wc;
      wc.model_dir = o.model_dir;
      wc.load = mo;
      if (r == 0) wc.load.progress = o.progress;  // one progress bar
      C8_ASSIGN_OR_RETURN(wc.shard, MakeShardSpec(config, r, N));
      Communicator* comm = N > 1 ? e->comms_[static_cast<size_t>(r)].get() : nullptr;
      C8_ASSIGN_OR_RETURN(e->workers_[static_cast<size_t>(r)],
                          Worker::Create(wc, std::move((*bs)[static_cast<size_t>(r)]), comm));
      return Status::Ok();
    };
    if (ex->threads_) {
      auto results = ex->threads_->Run(load);
      for (size_t r = 0; r < results.size(); ++r) {
        if (!results[r].ok()) {
          // Free what the other ranks loaded on their own threads.
          ex->threads_->Run([e](int k) {
            e->workers_[static_cast<size_t>(k)].reset();
            return Status::Ok();
          });
          ex->threads_.reset();
          return results[r].WithContext("tensor-parallel rank " + std::to_string(r));
        }
      }
    } else {
      C8_RETURN_IF_ERROR(load(0));
    }
  }
  C8_ASSIGN_OR_RETURN(ex->layers_, ResolveKvLayers(o.model_dir, config, o.kv_cache_dtype,
                                                   o.load_format == "dummy"));
  C8_RETURN_IF_ERROR(ex->SizeKvCache(o));
  if (!o.enforce_eager && ex->workers_[0]->backend().SupportsGraphs()) {
    const int32_t max_batch = static_cast<int32_t>(std::clamp<int64_t>(o.max_num_seqs, 1, 512));
    C8_RETURN_IF_ERROR(ex->RunOnAll([&](Worker& w) {
      w.EnableGraphs(max_batch);
      return Status::Ok();
    }));
    ex->kv_summary_ += "; decode steps of up to " + std::to_string(max_batch) +
                       " sequences run as CUDA graphs (--enforce-eager: off)";
  }
  return ex;
}

Status Executor::SizeKvCache(const EngineOptions& o) {
  const ModelConfig& c = config();
  const int N = tensor_parallel_size();
  spec_ = MakeKvCacheSpec(c, c.num_kv_heads, o.block_size, 0);
  if (o.block_size <= 0 || o.block_size % 16 != 0) {
    return Error("--block-size must be a positive multiple of 16, got " +
                 std::to_string(o.block_size));
  }
  // Per-rank bytes of one block (ranks hold different numbers of KV heads when they split
  // unevenly): the block count is the smallest any rank can hold.
  std::vector<int64_t> bpb;
  for (auto& w : workers_) bpb.push_back(w->KvBytesPerBlock(layers_, o.block_size));
  const int64_t max_bpb = *std::max_element(bpb.begin(), bpb.end());
  const int64_t context_blocks = (max_model_len() + o.block_size - 1) / o.block_size + 1;
  int64_t want_blocks = context_blocks;
  std::string how = "one full context";
  const std::string per_rank = N > 1 ? " per rank" : "";
  if (o.kv_cache_gib > 0) {
    want_blocks = static_cast<int64_t>(o.kv_cache_gib * (1ull << 30)) / max_bpb;
    how = "--kv-cache-memory " + std::to_string(o.kv_cache_gib) + " GiB" + per_rank;
    if (want_blocks < 2) {
      return Error("--kv-cache-memory " + std::to_string(o.kv_cache_gib) +
                   " GiB holds no KV block (" + std::to_string(max_bpb) + " bytes each)");
    }
  } else if (o.kv_cache_gib < 0) {
    if (!workers_[0]->MemoryInfo()) {
      want_blocks = std::max<int64_t>((int64_t{1} << 30) / max_bpb, context_blocks);
      how = "1 GiB" + per_rank + " (default on the CPU)";
    } else {
      if (!(o.gpu_memory_utilization > 0 && o.gpu_memory_utilization <= 1)) {
        return Error("--gpu-memory-utilization must be in (0, 1], got " +
                     std::to_string(o.gpu_memory_utilization));
      }
      C8_RETURN_IF_ERROR(RunOnAll([&](Worker& w) {
        return w.ProfileActivationPeak(o.max_num_batched_tokens, o.max_num_seqs, layers_,
                                       o.block_size);
      }));
      std::vector<double> budgets(static_cast<size_t>(N));
      std::vector<DeviceMemory> mems(static_cast<size_t>(N));
      C8_RETURN_IF_ERROR(RunOnAll([&](Worker& w) -> Status {
        const size_t r = static_cast<size_t>(w.shard().rank);
        auto mem = w.MemoryInfo();
        if (!mem) return Error("no device memory information");
        mems[r] = *mem;
        const double used = static_cast<double>(mem->total_bytes - mem->free_bytes);
        budgets[r] = o.gpu_memory_utilization * static_cast<double>(mem->total_bytes) - used;
        return Status::Ok();
      }));
      want_blocks = -1;
      for (int r = 0; r < N; ++r) {
        const double b = budgets[static_cast<size_t>(r)];
        const int64_t blocks = b > 0 ? static_cast<int64_t>(b / bpb[static_cast<size_t>(r)]) : 0;
        want_blocks = want_blocks < 0 ? blocks : std::min(want_blocks, blocks);
      }
      const DeviceMemory& m0 = mems[0];
      const double used0 = static_cast<double>(m0.total_bytes - m0.free_bytes);
      char buf[320];
      std::snprintf(buf, sizeof buf,
                    "%.2f GiB%s = %.2f x %.2f GiB device memory - %.2f GiB in use (weights %.2f "
                    "GiB + activations)",
                    budgets[0] / (1 << 30), N > 1 ? " on rank 0" : "", o.gpu_memory_utilization,
                    static_cast<double>(m0.total_bytes) / (1 << 30), used0 / (1 << 30),
                    static_cast<double>(workers_[0]->model().WeightBytes()) / (1 << 30));
      how = buf;
      if (want_blocks < context_blocks) {
        return Error("not enough device memory for one full context of " +
                     std::to_string(max_model_len()) + " tokens in the KV cache (" + how +
                     "): lower --max-model-len or raise --gpu-memory-utilization");
      }
    }
  }
  {
    // Tokens per dtype in the same memory, for the log (rank 0's share).
    const double bytes = static_cast<double>(want_blocks) * bpb[0];
    const int64_t elems = workers_[0]->shard().num_kv_heads * o.block_size * c.head_dim;
    const int64_t per_block16 = 2 * c.num_layers * elems * 2;
    const int64_t per_block8 = 2 * c.num_layers * elems;
    char buf[512];
    std::snprintf(
        buf, sizeof buf,
        "KV cache %.2f GiB%s (%s): %lld tokens as configured; bf16 would hold %lld, C8 "
        "int8 %lld",
        bytes / (1 << 30), N > 1 ? " per rank" : "", how.c_str(),
        static_cast<long long>((want_blocks - 1) * o.block_size),
        static_cast<long long>((static_cast<int64_t>(bytes / per_block16) - 1) * o.block_size),
        static_cast<long long>((static_cast<int64_t>(bytes / per_block8) - 1) * o.block_size));
    kv_summary_ = buf;
    if (N > 1) kv_summary_ += "; tensor parallel over " + device_name();
  }
  spec_.num_blocks = want_blocks;
  return RunOnAll([&](Worker& w) { return w.CreateKvCache(layers_, o.block_size, want_blocks); });
}

Status Executor::Execute(const StepInput& in, StepOutput* out) {
  if (!fatal_.ok()) return fatal_;
  if (!threads_) {
    BindCaller();
    return workers_[0]->Execute(in, /*sample=*/true, out);
  }
  // Every rank would reject a bad batch the same way; check it once here so that a request
  // error never breaks the group.
  C8_RETURN_IF_ERROR(CheckForwardBatch(in.batch, config(), max_model_len()));
  std::vector<StepOutput> scratch(workers_.size());
  return RunOnAll([&](Worker& w) {
    const int r = w.shard().rank;
    return w.Execute(in, r == 0, r == 0 ? out : &scratch[static_cast<size_t>(r)]);
  });
}

std::string Executor::TakeGraphWarning() {
  if (graph_warned_) return "";
  for (auto& w : workers_) {
    if (!w->graphs().error().empty()) {
      graph_warned_ = true;
      return "rank " + std::to_string(w->shard().rank) + ": " + w->graphs().error();
    }
  }
  return "";
}

}  // namespace c8
