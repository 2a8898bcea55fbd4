// The UCX data path on loopback: a decode-side endpoint registers buffers and exports their
// descriptors; a prefill-side endpoint connects, writes byte runs into them and flushes. In one
// process and across two processes (fork); bounds and unreachable peers are errors, not hangs.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "c8/kv_transfer/ucx_endpoint.h"

namespace c8 {
namespace {

TEST(RegionDesc, EncodeDecodeRoundTrip) {
  RegionDesc d{0x7f0012345678ull, 4096, {0x00, 0xab, 0xff, 0x10}};
  auto back = RegionDesc::Decode(d.Encode());
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->addr, d.addr);
  EXPECT_EQ(back->bytes, d.bytes);
  EXPECT_EQ(back->rkey, d.rkey);
  EXPECT_FALSE(RegionDesc::Decode("12:34").ok());
  EXPECT_FALSE(RegionDesc::Decode("12:34:abc").ok());
  EXPECT_FALSE(RegionDesc::Decode("x:34:ab").ok());
}

TEST(UcxEndpoint, PutsLandInTheRegisteredRegions) {
  auto dst = UcxEndpoint::Create({});
  ASSERT_TRUE(dst.ok()) << dst.message();
  ASSERT_GT((*dst)->port(), 0);
  std::vector<uint8_t> a(1 << 20, 0), b(4096, 0);
  auto da = (*dst)->Register(a.data(), a.size());
  auto db = (*dst)->Register(b.data(), b.size());
  ASSERT_TRUE(da.ok() && db.ok());

  UcxEndpointOptions so;
  so.listen_host = "";  // a sender only
  auto src = UcxEndpoint::Create(so);
  ASSERT_TRUE(src.ok()) << src.message();
  auto peer = (*src)->Connect("127.0.0.1", (*dst)->port());
  ASSERT_TRUE(peer.ok()) << peer.message();
  auto ra = (*src)->Import(*peer, *RegionDesc::Decode(da->Encode()));
  auto rb = (*src)->Import(*peer, *db);
  ASSERT_TRUE(ra.ok() && rb.ok());
  std::vector<uint8_t> pattern(70000);
  std::iota(pattern.begin(), pattern.end(), 1);
  // Runs of "blocks" at scattered offsets, as a layer's blocks land in the peer's cache.
  const std::vector<std::pair<uint64_t, size_t>> runs = {{0, 4096}, {65536, 70000}, {(1 << 20) - 100, 100}};
  for (const auto& [off, len] : runs) {
    ASSERT_TRUE((*src)->Put(*peer, *ra, off, pattern.data(), len).ok());
  }
  ASSERT_TRUE((*src)->Put(*peer, *rb, 10, pattern.data() + 5, 50).ok());
  Status fl = (*src)->Flush(*peer);
  ASSERT_TRUE(fl.ok()) << fl.message();
  for (const auto& [off, len] : runs) {
    EXPECT_EQ(std::memcmp(a.data() + off, pattern.data(), len), 0) << "offset " << off;
  }
  EXPECT_EQ(a[4096], 0);
  EXPECT_EQ(std::memcmp(b.data() + 10, pattern.data() + 5, 50), 0);
  EXPECT_EQ(b[9], 0);
  EXPECT_EQ(b[60], 0);
  EXPECT_EQ((*src)->bytes_put(), 4096u + 70000u + 100u + 50u);
  // A write past the region's end is refused before it reaches the wire.
  Status oob = (*src)->Put(*peer, *rb, 4000, pattern.data(), 200);
  EXPECT_FALSE(oob.ok());
  EXPECT_NE(oob.message().find("overruns"), std::string::npos) << oob.message();
  (*src)->Disconnect(*peer);
  EXPECT_FALSE((*src)->Put(*peer, *ra, 0, pattern.data(), 10).ok());
}

TEST(UcxEndpoint, UnreachablePeerIsAnError) {
  // A port with no listener: take one from a throwaway endpoint, then close it.
  int port = 0;
  {
    auto tmp = UcxEndpoint::Create({});
    ASSERT_TRUE(tmp.ok());
    port = (*tmp)->port();
  }
  UcxEndpointOptions so;
  so.listen_host = "";
  so.connect_timeout_s = 3.0;
  auto src = UcxEndpoint::Create(so);
  ASSERT_TRUE(src.ok());
  auto peer = (*src)->Connect("127.0.0.1", port);
  EXPECT_FALSE(peer.ok());
  EXPECT_NE(peer.message().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << peer.message();
  EXPECT_FALSE((*src)->Connect("not-an-address", 1).ok());
}

// Two processes: the child is the decode side (registers, reports its descriptor through a
// pipe, checks its memory once told the writes are flushed).
TEST(UcxEndpoint, WritesAcrossProcesses) {
  int to_parent[2], to_child[2];
  ASSERT_EQ(pipe(to_parent), 0);
  ASSERT_EQ(pipe(to_child), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(to_parent[0]);
    close(to_child[1]);
    std::vector<uint8_t> buf(256 * 1024, 0);
    auto ep = UcxEndpoint::Create({});
    if (!ep.ok()) _exit(2);
    auto d = (*ep)->Register(buf.data(), buf.size());
    if (!d.ok()) _exit(3);
    const std::string msg = std::to_string((*ep)->port()) + " " + d->Encode() + "\n";
    if (write(to_parent[1], msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) _exit(4);
    char go = 0;
    if (read(to_child[0], &go, 1) != 1) _exit(5);
    for (size_t i = 0; i < buf.size(); ++i) {
      const uint8_t want = i >= 1000 && i < 201000 ? static_cast<uint8_t>((i - 1000) * 7) : 0;
      if (buf[i] != want) _exit(6);
    }
    _exit(0);
  }
  close(to_parent[1]);
  close(to_child[0]);
  std::string line;
  char ch;
  while (read(to_parent[0], &ch, 1) == 1 && ch != '\n') line.push_back(ch);
  const size_t sp = line.find(' ');
  ASSERT_NE(sp, std::string::npos) << "child said: " << line;
  const int port = std::stoi(line.substr(0, sp));
  auto desc = RegionDesc::Decode(line.substr(sp + 1));
  ASSERT_TRUE(desc.ok()) << desc.message();
  UcxEndpointOptions so;
  so.listen_host = "";
  auto src = UcxEndpoint::Create(so);
  ASSERT_TRUE(src.ok()) << src.message();
  auto peer = (*src)->Connect("127.0.0.1", port);
  ASSERT_TRUE(peer.ok()) << peer.message();
  auto region = (*src)->Import(*peer, *desc);
  ASSERT_TRUE(region.ok()) << region.message();
  std::vector<uint8_t> data(200000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  for (size_t off = 0; off < data.size(); off += 50000) {  // four runs
    ASSERT_TRUE((*src)->Put(*peer, *region, 1000 + off, data.data() + off, 50000).ok());
  }
  Status fl = (*src)->Flush(*peer);
  ASSERT_TRUE(fl.ok()) << fl.message();
  ASSERT_EQ(write(to_child[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child verification failed (code " << WEXITSTATUS(status)
                                     << ")";
}

}  // namespace
}  // namespace c8
