// One-sided KV transfer over UCX (ucp): the data path of prefill/decode disaggregation. The
// decode instance registers its KV cache buffers and exports their descriptors; the prefill
// instance connects, imports them and writes ("puts") its layers' blocks straight into the
// decode instance's blocks, then flushes. UCX picks the transport: shared memory or TCP
// between processes on one host, cuda_ipc / cuda_copy for GPU memory, RDMA where present.
//
// Thread safety: every method may be called from any thread (one mutex serializes UCP calls;
// a progress thread drives connection establishment and completions).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

// A registered memory region as the peer needs it: where it is and the packed remote key.
struct RegionDesc {
  uint64_t addr = 0;
  uint64_t bytes = 0;
  std::vector<uint8_t> rkey;  // ucp_rkey_pack output

  std::string Encode() const;  // "addr:bytes:hex(rkey)" for a JSON control message
  static Result<RegionDesc> Decode(const std::string& text);
};

struct UcxEndpointOptions {
  std::string listen_host = "127.0.0.1";  // "" : no listener (a sender only)
  int listen_port = 0;                    // 0: any free port
  double connect_timeout_s = 10.0;
};

class UcxEndpoint {
 public:
  static Result<std::unique_ptr<UcxEndpoint>> Create(const UcxEndpointOptions& options);
  ~UcxEndpoint();
  UcxEndpoint(const UcxEndpoint&) = delete;
  UcxEndpoint& operator=(const UcxEndpoint&) = delete;

  // The listener's port (0 without a listener).
  int port() const;
  // Registers [ptr, ptr + bytes) for remote writes by peers (kept until the endpoint dies).
  Result<RegionDesc> Register(void* ptr, size_t bytes);

  // Connects to a peer's listener; returns a peer id. Errors (refused, unreachable, timeout)
  // name the address.
  Result<int> Connect(const std::string& host, int port);
  // Makes a peer's region writable through peer `peer`; returns a remote region id.
  Result<int> Import(int peer, const RegionDesc& region);
  // Queues a write of local [src, src + bytes) to remote region `region` at `offset` (bounds
  // checked against the region). Completion: Flush.
  Status Put(int peer, int region, uint64_t offset, const void* src, size_t bytes);
  // Waits until every queued write to `peer` is complete at the peer (timeout: error).
  Status Flush(int peer, double timeout_s = 30.0);
  // Closes a peer's connection and its imported regions.
  void Disconnect(int peer);

  // Bytes written through Put so far.
  uint64_t bytes_put() const;

 private:
  struct Impl;
  explicit UcxEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace c8
