#include "c8/kv_transfer/ucx_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <ucp/api/ucp.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

namespace c8 {

namespace {

std::string UcsError(const char* what, ucs_status_t st) {
  return std::string("UCX: ") + what + ": " + ucs_status_string(st);
}

}  // namespace

std::string RegionDesc::Encode() const {
  static const char* hex = "0123456789abcdef";
  std::string out = std::to_string(addr) + ":" + std::to_string(bytes) + ":";
  for (uint8_t b : rkey) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

Result<RegionDesc> RegionDesc::Decode(const std::string& text) {
  const size_t a = text.find(':'), b = a == std::string::npos ? a : text.find(':', a + 1);
  if (b == std::string::npos) return Error("KV region descriptor '" + text + "': malformed");
  RegionDesc d;
  try {
    d.addr = std::stoull(text.substr(0, a));
    d.bytes = std::stoull(text.substr(a + 1, b - a - 1));
  } catch (...) {
    return Error("KV region descriptor: bad address or size");
  }
  const std::string h = text.substr(b + 1);
  if (h.size() % 2) return Error("KV region descriptor: odd-length remote key");
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < h.size(); i += 2) {
    const int hi = nib(h[i]), lo = nib(h[i + 1]);
    if (hi < 0 || lo < 0) return Error("KV region descriptor: bad remote key");
    d.rkey.push_back(static_cast<uint8_t>(hi * 16 + lo));
  }
  return d;
}

struct UcxEndpoint::Impl {
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  ucp_listener_h listener = nullptr;
  int port = 0;
  std::mutex mu;  // every ucp call
  std::thread progress;
  std::atomic<bool> stop{false};
  std::vector<ucp_mem_h> regions;
  std::vector<ucp_ep_h> accepted;  // server-side endpoints of connected peers
  struct Remote {
    int peer = 0;
    uint64_t addr = 0, bytes = 0;
    ucp_rkey_h rkey = nullptr;
  };
  struct Peer {
    ucp_ep_h ep = nullptr;
    std::atomic<bool> failed{false};
    std::string where;
  };
  std::map<int, std::unique_ptr<Peer>> peers;
  std::map<int, Remote> remotes;
  int next_peer = 1, next_remote = 1;
  std::atomic<uint64_t> bytes_put{0};
  double connect_timeout_s = 10.0;

  static void OnConnRequest(ucp_conn_request_h req, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    ucp_ep_params_t p{};
    p.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                   UCP_EP_PARAM_FIELD_ERR_HANDLER;
    p.conn_request = req;
    p.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    p.err_handler.cb = [](void*, ucp_ep_h, ucs_status_t) {};
    p.err_handler.arg = nullptr;
    ucp_ep_h ep = nullptr;
    if (ucp_ep_create(self->worker, &p, &ep) == UCS_OK) self->accepted.push_back(ep);
  }
  static void OnPeerError(void* arg, ucp_ep_h, ucs_status_t) {
    static_cast<Peer*>(arg)->failed = true;
  }

  // Progress until `req` completes (or the deadline); releases it. Caller holds mu.
  ucs_status_t WaitLocked(void* req, double timeout_s) {
    if (req == nullptr) return UCS_OK;
    if (UCS_PTR_IS_ERR(req)) return UCS_PTR_STATUS(req);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    ucs_status_t st;
    while ((st = ucp_request_check_status(req)) == UCS_INPROGRESS) {
      ucp_worker_progress(worker);
      if (std::chrono::steady_clock::now() > deadline) {
        ucp_request_cancel(worker, req);
        while (ucp_request_check_status(req) == UCS_INPROGRESS) ucp_worker_progress(worker);
        ucp_request_free(req);
        return UCS_ERR_TIMED_OUT;
      }
    }
    ucp_request_free(req);
    return st;
  }

  void CloseEp(ucp_ep_h ep) {
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    p.flags = UCP_EP_CLOSE_FLAG_FORCE;
    WaitLocked(ucp_ep_close_nbx(ep, &p), 5.0);
  }
};

UcxEndpoint::UcxEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<UcxEndpoint>> UcxEndpoint::Create(const UcxEndpointOptions& o) {
  auto impl = std::make_unique<Impl>();
  impl->connect_timeout_s = o.connect_timeout_s;
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_RMA;
  params.mt_workers_shared = 1;
  ucp_config_t* config = nullptr;
  ucs_status_t st = ucp_config_read(nullptr, nullptr, &config);
  if (st != UCS_OK) return Error(UcsError("read configuration", st));
  st = ucp_init(&params, config, &impl->context);
  ucp_config_release(config);
  if (st != UCS_OK) return Error(UcsError("init", st));
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_MULTI;
  st = ucp_worker_create(impl->context, &wp, &impl->worker);
  if (st != UCS_OK) {
    ucp_cleanup(impl->context);
    return Error(UcsError("worker create", st));
  }
  std::unique_ptr<UcxEndpoint> ep(new UcxEndpoint(std::move(impl)));
  Impl& m = *ep->impl_;
  if (!o.listen_host.empty()) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(o.listen_port));
    if (inet_pton(AF_INET, o.listen_host.c_str(), &addr.sin_addr) != 1) {
      return Error("KV transfer: listen address '" + o.listen_host + "' is not an IPv4 address");
    }
    ucp_listener_params_t lp{};
    lp.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
    lp.sockaddr.addr = reinterpret_cast<const sockaddr*>(&addr);
    lp.sockaddr.addrlen = sizeof(addr);
    lp.conn_handler.cb = &Impl::OnConnRequest;
    lp.conn_handler.arg = &m;
    st = ucp_listener_create(m.worker, &lp, &m.listener);
    if (st != UCS_OK) {
      return Error(UcsError(("listen on " + o.listen_host + ":" + std::to_string(o.listen_port)).c_str(),
                            st));
    }
    ucp_listener_attr_t la{};
    la.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
    if (ucp_listener_query(m.listener, &la) == UCS_OK) {
      m.port = ntohs(reinterpret_cast<const sockaddr_in*>(&la.sockaddr)->sin_port);
    }
  }
  m.progress = std::thread([&m] {
    while (!m.stop.load()) {
      {
        std::lock_guard<std::mutex> lock(m.mu);
        while (ucp_worker_progress(m.worker) != 0) {
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  return ep;
}

UcxEndpoint::~UcxEndpoint() {
  Impl& m = *impl_;
  m.stop = true;
  if (m.progress.joinable()) m.progress.join();
  std::lock_guard<std::mutex> lock(m.mu);
  for (auto& [id, r] : m.remotes) ucp_rkey_destroy(r.rkey);
  m.remotes.clear();
  for (auto& [id, p] : m.peers) m.CloseEp(p->ep);
  m.peers.clear();
  for (ucp_ep_h e : m.accepted) m.CloseEp(e);
  if (m.listener) ucp_listener_destroy(m.listener);
  for (ucp_mem_h h : m.regions) ucp_mem_unmap(m.context, h);
  if (m.worker) ucp_worker_destroy(m.worker);
  if (m.context) ucp_cleanup(m.context);
}

int UcxEndpoint::port() const {
  return impl_->port;
}

uint64_t UcxEndpoint::bytes_put() const {
  return impl_->bytes_put.load();
}

Result<RegionDesc> UcxEndpoint::Register(void* ptr, size_t bytes) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  ucp_mem_map_params_t mp{};
  mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  mp.address = ptr;
  mp.length = bytes;
  ucp_mem_h memh = nullptr;
  ucs_status_t st = ucp_mem_map(m.context, &mp, &memh);
  if (st != UCS_OK) return Error(UcsError("register a KV buffer", st));
  void* rkey = nullptr;
  size_t rkey_size = 0;
  st = ucp_rkey_pack(m.context, memh, &rkey, &rkey_size);
  if (st != UCS_OK) {
    ucp_mem_unmap(m.context, memh);
    return Error(UcsError("pack a remote key", st));
  }
  m.regions.push_back(memh);
  RegionDesc d;
  d.addr = reinterpret_cast<uint64_t>(ptr);
  d.bytes = bytes;
  d.rkey.assign(static_cast<uint8_t*>(rkey), static_cast<uint8_t*>(rkey) + rkey_size);
  ucp_rkey_buffer_release(rkey);
  return d;
}

Result<int> UcxEndpoint::Connect(const std::string& host, int port) {
  Impl& m = *impl_;
  const std::string where = host + ":" + std::to_string(port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Error("KV transfer: peer address '" + host + "' is not an IPv4 address");
  }
  auto peer = std::make_unique<Impl::Peer>();
  peer->where = where;
  std::lock_guard<std::mutex> lock(m.mu);
  ucp_ep_params_t p{};
  p.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                 UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
  p.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
  p.sockaddr.addr = reinterpret_cast<const sockaddr*>(&addr);
  p.sockaddr.addrlen = sizeof(addr);
  p.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  p.err_handler.cb = &Impl::OnPeerError;
  p.err_handler.arg = peer.get();
  ucs_status_t st = ucp_ep_create(m.worker, &p, &peer->ep);
  if (st != UCS_OK) return Error(UcsError(("connect to " + where).c_str(), st));
  // The connection is made lazily: a flush completes once the peer has accepted (or fails).
  ucp_request_param_t fp{};
  st = m.WaitLocked(ucp_ep_flush_nbx(peer->ep, &fp), m.connect_timeout_s);
  if (st != UCS_OK || peer->failed) {
    m.CloseEp(peer->ep);
    return Error(UcsError(("connect to " + where).c_str(), st != UCS_OK ? st : UCS_ERR_UNREACHABLE));
  }
  const int id = m.next_peer++;
  m.peers[id] = std::move(peer);
  return id;
}

Result<int> UcxEndpoint::Import(int peer, const RegionDesc& region) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  auto it = m.peers.find(peer);
  if (it == m.peers.end()) return Error("KV transfer: no peer " + std::to_string(peer));
  ucp_rkey_h rkey = nullptr;
  ucs_status_t st = ucp_ep_rkey_unpack(it->second->ep, region.rkey.data(), &rkey);
  if (st != UCS_OK) return Error(UcsError(("unpack a remote key of " + it->second->where).c_str(), st));
  const int id = m.next_remote++;
  m.remotes[id] = Impl::Remote{peer, region.addr, region.bytes, rkey};
  return id;
}

Status UcxEndpoint::Put(int peer, int region, uint64_t offset, const void* src, size_t bytes) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  auto pit = m.peers.find(peer);
  auto rit = m.remotes.find(region);
  if (pit == m.peers.end() || rit == m.remotes.end() || rit->second.peer != peer) {
    return Error("KV transfer: unknown peer " + std::to_string(peer) + " or region " +
                 std::to_string(region));
  }
  if (pit->second->failed) return Error("KV transfer: peer " + pit->second->where + " failed");
  const Impl::Remote& r = rit->second;
  if (offset > r.bytes || bytes > r.bytes - offset) {
    return Error("KV transfer: write of " + std::to_string(bytes) + " bytes at offset " +
                 std::to_string(offset) + " overruns a " + std::to_string(r.bytes) +
                 "-byte region of " + pit->second->where);
  }
  ucp_request_param_t p{};
  void* req = ucp_put_nbx(pit->second->ep, src, bytes, r.addr + offset, r.rkey, &p);
  if (UCS_PTR_IS_ERR(req)) {
    return Error(UcsError(("write to " + pit->second->where).c_str(), UCS_PTR_STATUS(req)));
  }
  if (req != nullptr) ucp_request_free(req);  // released on completion; Flush waits
  m.bytes_put += bytes;
  return Status::Ok();
}

Status UcxEndpoint::Flush(int peer, double timeout_s) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  auto it = m.peers.find(peer);
  if (it == m.peers.end()) return Error("KV transfer: no peer " + std::to_string(peer));
  ucp_request_param_t p{};
  const ucs_status_t st = m.WaitLocked(ucp_ep_flush_nbx(it->second->ep, &p), timeout_s);
  if (st != UCS_OK || it->second->failed) {
    return Error(UcsError(("flush writes to " + it->second->where).c_str(),
                          st != UCS_OK ? st : UCS_ERR_CONNECTION_RESET));
  }
  return Status::Ok();
}

void UcxEndpoint::Disconnect(int peer) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  for (auto it = m.remotes.begin(); it != m.remotes.end();) {
    if (it->second.peer == peer) {
      ucp_rkey_destroy(it->second.rkey);
      it = m.remotes.erase(it);
    } else {
      ++it;
    }
  }
  auto it = m.peers.find(peer);
  if (it == m.peers.end()) return;
  m.CloseEp(it->second->ep);
  m.peers.erase(it);
}

}  // namespace c8
