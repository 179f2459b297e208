// TCP rendezvous over POSIX sockets (see tcp_rendezvous.hpp for the protocol and its
// invariants).
//
// Implementation notes:
// - Every socket is non-blocking and owned by a Socket (closed by its destructor); every
//   wait is a poll() bounded by a Deadline, so no call blocks past the caller's timeout.
// - send() uses MSG_NOSIGNAL: a peer that hung up is an error message, not a SIGPIPE.
// - Rank 0 listens on the IPv6 wildcard with IPV6_V6ONLY off (IPv4 and IPv6 clients
//   alike), falling back to IPv4 only where the host has no IPv6.
// - A client whose connection lands on its own port (TCP self-connect, possible when
//   MASTER_PORT is in the ephemeral range and nobody listens) treats it as refused.
#include "host/dist/tcp_rendezvous.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "host/core/error.hpp"

namespace cadenza {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::array<char, 4> kMagic{'C', 'D', 'Z', '1'};
constexpr size_t kHelloBytes = 12;  // magic, rank, world size
constexpr size_t kHeaderBytes = 8;  // magic, payload length
// Pause between connection attempts while rank 0 is not listening yet.
constexpr auto kRetryPause = std::chrono::milliseconds(50);
// The longest one connection attempt may take, so that an unreachable address of a host
// name does not use up the whole timeout before its other addresses are tried.
constexpr auto kAttemptLimit = std::chrono::seconds(2);
// Timeouts beyond this (about three years) are clamped, keeping the clock arithmetic exact.
constexpr double kLongestTimeoutSeconds = 1e8;

// Owns one file descriptor and closes it.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    if (this != &other) {
      close_fd();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { close_fd(); }

  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }

 private:
  void close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

// A point in time that waits must not pass.
class Deadline {
 public:
  explicit Deadline(Clock::time_point end) : end_(end) {}
  explicit Deadline(double seconds)
      : end_(Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                std::min(seconds, kLongestTimeoutSeconds)))) {}

  Clock::time_point end() const { return end_; }
  bool passed() const { return Clock::now() >= end_; }
  Clock::duration left() const { return std::max(end_ - Clock::now(), Clock::duration::zero()); }
  // Milliseconds left, for poll(); rounded up, so a wait never ends before the deadline.
  int poll_ms() const {
    const long long ms = std::chrono::ceil<std::chrono::milliseconds>(left()).count();
    return static_cast<int>(std::min<long long>(ms, INT_MAX));
  }

 private:
  Clock::time_point end_;
};

enum class Transfer { done, timed_out, closed };

// A system call failed in a way that no retry fixes.
[[noreturn]] void fail_system_call(const std::string& context, const char* call, int error) {
  throw Error(context + ": " + call + " failed: " + std::strerror(error));
}

std::string format_seconds(double seconds) {
  std::ostringstream out;
  out << seconds;
  return out.str();
}

void put_u32(char* out, uint32_t value) {
  const uint32_t network = htonl(value);
  std::memcpy(out, &network, sizeof network);
}

uint32_t get_u32(const char* in) {
  uint32_t network = 0;
  std::memcpy(&network, in, sizeof network);
  return ntohl(network);
}

bool has_magic(const char* bytes) { return std::equal(kMagic.begin(), kMagic.end(), bytes); }

// Waits until `socket` is ready for `events` (or has hung up); false when the deadline
// passed first.
bool wait_for(const Socket& socket, short events, const Deadline& deadline, const std::string& context) {
  while (true) {
    pollfd entry{socket.fd(), events, 0};
    const int ready = ::poll(&entry, 1, deadline.poll_ms());
    if (ready > 0) return true;
    if (ready == 0 && deadline.passed()) return false;
    if (ready < 0 && errno != EINTR) fail_system_call(context, "poll", errno);
  }
}

Transfer send_all(const Socket& socket, const char* data, size_t size, const Deadline& deadline,
                  const std::string& context) {
  size_t sent = 0;
  while (sent < size) {
    const ssize_t count = ::send(socket.fd(), data + sent, size - sent, MSG_NOSIGNAL);
    if (count >= 0) {
      sent += static_cast<size_t>(count);
      continue;
    }
    const int error = errno;
    if (error == EINTR) continue;
    if (error == EPIPE || error == ECONNRESET) return Transfer::closed;
    if (error != EAGAIN && error != EWOULDBLOCK) fail_system_call(context, "send", error);
    if (!wait_for(socket, POLLOUT, deadline, context)) return Transfer::timed_out;
  }
  return Transfer::done;
}

Transfer receive_exact(const Socket& socket, char* data, size_t size, const Deadline& deadline,
                       const std::string& context) {
  size_t received = 0;
  while (received < size) {
    const ssize_t count = ::recv(socket.fd(), data + received, size - received, 0);
    if (count > 0) {
      received += static_cast<size_t>(count);
      continue;
    }
    if (count == 0) return Transfer::closed;
    const int error = errno;
    if (error == EINTR) continue;
    if (error == ECONNRESET) return Transfer::closed;
    if (error != EAGAIN && error != EWOULDBLOCK) fail_system_call(context, "recv", error);
    if (!wait_for(socket, POLLIN, deadline, context)) return Transfer::timed_out;
  }
  return Transfer::done;
}

// The numeric address of a peer, for messages.
std::string numeric_host(const sockaddr_storage& address, socklen_t length) {
  std::array<char, NI_MAXHOST> host{};
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host.data(), host.size(),
                    nullptr, 0, NI_NUMERICHOST) != 0)
    return "an unknown address";
  return host.data();
}

// ---- rank 0 ----

// A listening socket on `port` of every interface of `family`; closed when the family is
// not available on this host (and is IPv6, which has the IPv4 fallback).
Socket listen_on_family(int family, const RendezvousPort& rendezvous, int backlog, const std::string& context) {
  const int port = rendezvous.port;
  Socket socket(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!socket.is_open()) {
    if (family == AF_INET6) return Socket();
    fail_system_call(context, "socket", errno);
  }
  const int on = 1, off = 0;
  if (::setsockopt(socket.fd(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
    fail_system_call(context, "setsockopt(SO_REUSEADDR)", errno);
  sockaddr_storage address{};
  socklen_t length = 0;
  if (family == AF_INET6) {
    if (::setsockopt(socket.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) return Socket();
    auto& ipv6 = reinterpret_cast<sockaddr_in6&>(address);
    ipv6.sin6_family = AF_INET6;
    ipv6.sin6_addr = in6addr_any;
    ipv6.sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof ipv6;
  } else {
    auto& ipv4 = reinterpret_cast<sockaddr_in&>(address);
    ipv4.sin_family = AF_INET;
    ipv4.sin_addr.s_addr = htonl(INADDR_ANY);
    ipv4.sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof ipv4;
  }
  if (::bind(socket.fd(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    const int error = errno;
    if (error == EADDRINUSE)
      CADENZA_USER_ERROR(context << ": port " << port << " (" << rendezvous.origin
                                 << ") is in use; choose another MASTER_PORT");
    if (error == EACCES)
      CADENZA_USER_ERROR(context << ": port " << port
                                 << " needs privileges; choose a MASTER_PORT above 1023");
    if (family == AF_INET6) return Socket();
    fail_system_call(context, "bind", error);
  }
  if (::listen(socket.fd(), backlog) != 0) fail_system_call(context, "listen", errno);
  return socket;
}

Socket listen_on(const RendezvousPort& rendezvous, int backlog, const std::string& context) {
  Socket socket = listen_on_family(AF_INET6, rendezvous, backlog, context);
  return socket.is_open() ? std::move(socket) : listen_on_family(AF_INET, rendezvous, backlog, context);
}

// A connection accepted by rank 0 whose greeting has not fully arrived.
struct Arrival {
  Socket socket;
  std::string peer;
  std::array<char, kHelloBytes> hello{};
  size_t received = 0;
};

void accept_pending(const Socket& listener, std::vector<Arrival>& pending, const std::string& context) {
  while (true) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    const int fd = ::accept4(listener.fd(), reinterpret_cast<sockaddr*>(&address), &length,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      pending.push_back(Arrival{Socket(fd), numeric_host(address, length)});
      continue;
    }
    const int error = errno;
    if (error == EINTR || error == ECONNABORTED) continue;
    if (error == EAGAIN || error == EWOULDBLOCK) return;
    fail_system_call(context, "accept", error);
  }
}

enum class Greeting { incomplete, complete, dropped };

// Reads what has come of an arrival's greeting; a connection closed before its greeting
// is complete is dropped (its rank may still connect again before the deadline).
Greeting read_greeting(Arrival& arrival, const std::string& context) {
  while (arrival.received < kHelloBytes) {
    const ssize_t count = ::recv(arrival.socket.fd(), arrival.hello.data() + arrival.received,
                                 kHelloBytes - arrival.received, 0);
    if (count > 0) {
      arrival.received += static_cast<size_t>(count);
      continue;
    }
    if (count == 0) return Greeting::dropped;
    const int error = errno;
    if (error == EINTR) continue;
    if (error == EAGAIN || error == EWOULDBLOCK) return Greeting::incomplete;
    if (error == ECONNRESET) return Greeting::dropped;
    fail_system_call(context, "recv", error);
  }
  return Greeting::complete;
}

// The rank a complete greeting announces, checked against the world and the ranks so far.
int checked_rank(const Arrival& arrival, const std::vector<Socket>& arrived,
                 const std::vector<std::string>& peers, const std::string& context) {
  const int world_size = static_cast<int>(arrived.size());
  if (!has_magic(arrival.hello.data()))
    CADENZA_USER_ERROR(context << ": " << arrival.peer
                               << " sent something other than a cadenza rank's greeting (no CDZ1); "
                                  "is another program using this port?");
  const uint32_t rank = get_u32(arrival.hello.data() + 4);
  const uint32_t their_world_size = get_u32(arrival.hello.data() + 8);
  if (their_world_size != static_cast<uint32_t>(world_size))
    CADENZA_USER_ERROR(context << ": rank " << rank << " at " << arrival.peer << " has world size "
                               << their_world_size << ", rank 0 has " << world_size
                               << "; every process needs the same WORLD_SIZE");
  if (rank < 1 || rank >= static_cast<uint32_t>(world_size))
    CADENZA_USER_ERROR(context << ": " << arrival.peer << " announced rank " << rank << ", outside 1.."
                               << world_size - 1 << " for a world of " << world_size
                               << "; check each process's RANK");
  if (arrived[rank].is_open())
    CADENZA_USER_ERROR(context << ": rank " << rank << " announced itself twice (from "
                               << peers[rank] << " and " << arrival.peer
                               << "); check each process's RANK");
  return static_cast<int>(rank);
}

[[noreturn]] void fail_missing_ranks(const std::vector<Socket>& arrived, double timeout_seconds,
                                     const std::string& context) {
  std::ostringstream missing;
  int count = 0;
  for (size_t rank = 1; rank < arrived.size(); ++rank) {
    if (arrived[rank].is_open()) continue;
    missing << (count++ > 0 ? ", " : "") << rank;
  }
  CADENZA_USER_ERROR(context << ": " << (count > 1 ? "ranks " : "rank ") << missing.str() << " of "
                             << arrived.size() << " did not arrive within "
                             << format_seconds(timeout_seconds) << " s");
}

// Waits for every other rank's greeting; returns their connections, indexed by rank (the
// entry of rank 0 is closed).
std::vector<Socket> gather_ranks(const Socket& listener, int world_size, double timeout_seconds,
                                 const std::string& context) {
  std::vector<Socket> arrived(static_cast<size_t>(world_size));
  std::vector<std::string> peers(static_cast<size_t>(world_size));
  std::vector<Arrival> pending;
  int arrived_count = 0;
  const Deadline deadline(timeout_seconds);
  while (arrived_count < world_size - 1) {
    if (deadline.passed()) fail_missing_ranks(arrived, timeout_seconds, context);
    std::vector<pollfd> entries{{listener.fd(), POLLIN, 0}};
    for (const Arrival& arrival : pending) entries.push_back({arrival.socket.fd(), POLLIN, 0});
    if (::poll(entries.data(), entries.size(), deadline.poll_ms()) < 0) {
      if (errno == EINTR) continue;
      fail_system_call(context, "poll", errno);
    }
    // Backwards, so that erasing an arrival keeps the indices of those not yet visited.
    for (size_t i = pending.size(); i-- > 0;) {
      if (entries[i + 1].revents == 0) continue;
      const Greeting greeting = read_greeting(pending[i], context);
      if (greeting == Greeting::incomplete) continue;
      if (greeting == Greeting::complete) {
        const int rank = checked_rank(pending[i], arrived, peers, context);
        arrived[static_cast<size_t>(rank)] = std::move(pending[i].socket);
        peers[static_cast<size_t>(rank)] = pending[i].peer;
        ++arrived_count;
      }
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (entries[0].revents != 0) accept_pending(listener, pending, context);
  }
  return arrived;
}

std::vector<char> serve_as_root(const LaunchInfo& launch, const std::vector<char>& payload,
                                double timeout_seconds) {
  CADENZA_CHECK(payload.size() <= UINT32_MAX, "rendezvous payload of " << payload.size() << " bytes");
  const RendezvousPort rendezvous = rendezvous_port(launch);
  const std::string context = "rendezvous on port " + std::to_string(rendezvous.port);
  const Socket listener = listen_on(rendezvous, launch.world_size - 1, context);
  const std::vector<Socket> ranks = gather_ranks(listener, launch.world_size, timeout_seconds, context);

  std::vector<char> answer(kHeaderBytes + payload.size());
  std::copy(kMagic.begin(), kMagic.end(), answer.begin());
  put_u32(answer.data() + 4, static_cast<uint32_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), answer.begin() + kHeaderBytes);
  const Deadline deadline(timeout_seconds);
  for (size_t rank = 1; rank < ranks.size(); ++rank) {
    const Transfer sent = send_all(ranks[rank], answer.data(), answer.size(), deadline, context);
    if (sent == Transfer::closed)
      CADENZA_USER_ERROR(context << ": rank " << rank << " hung up before rank 0 sent its payload");
    if (sent == Transfer::timed_out)
      CADENZA_USER_ERROR(context << ": rank " << rank << " did not take rank 0's payload within "
                                 << format_seconds(timeout_seconds) << " s");
  }
  return payload;
}

// ---- ranks > 0 ----

bool same_endpoint(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& a4 = reinterpret_cast<const sockaddr_in&>(a);
    const auto& b4 = reinterpret_cast<const sockaddr_in&>(b);
    return a4.sin_port == b4.sin_port && a4.sin_addr.s_addr == b4.sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6&>(a);
    const auto& b6 = reinterpret_cast<const sockaddr_in6&>(b);
    return a6.sin6_port == b6.sin6_port &&
           std::memcmp(&a6.sin6_addr, &b6.sin6_addr, sizeof a6.sin6_addr) == 0;
  }
  return false;
}

// Whether a connected socket is connected to itself (TCP self-connect).
bool is_self_connected(const Socket& socket) {
  sockaddr_storage local{}, remote{};
  socklen_t local_length = sizeof local, remote_length = sizeof remote;
  if (::getsockname(socket.fd(), reinterpret_cast<sockaddr*>(&local), &local_length) != 0 ||
      ::getpeername(socket.fd(), reinterpret_cast<sockaddr*>(&remote), &remote_length) != 0)
    return false;
  return same_endpoint(local, remote);
}

// One connection attempt to `address`; closed on failure, with the reason in `failure`.
Socket try_connect(const addrinfo& address, const Deadline& deadline, const std::string& context,
                   std::string& failure) {
  Socket socket(::socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         address.ai_protocol));
  if (!socket.is_open()) {
    failure = std::strerror(errno);
    return Socket();
  }
  if (::connect(socket.fd(), address.ai_addr, address.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      failure = std::strerror(errno);
      return Socket();
    }
    if (!wait_for(socket, POLLOUT, deadline, context)) {
      failure = "connection timed out";
      return Socket();
    }
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error != 0) {
      failure = std::strerror(error);
      return Socket();
    }
  }
  if (is_self_connected(socket)) {
    failure = "nobody listening (the connection looped back to itself)";
    return Socket();
  }
  return socket;
}

// A connection to rank 0, trying every address of MASTER_ADDR until one answers or the
// deadline passes.
Socket connect_to_root(const LaunchInfo& launch, double timeout_seconds, const std::string& context) {
  const Deadline deadline(timeout_seconds);
  const std::string port = std::to_string(rendezvous_port(launch).port);
  std::string failure = "none made";
  while (true) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int resolved = ::getaddrinfo(launch.master_addr.c_str(), port.c_str(), &hints, &found);
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
    if (resolved != 0 && resolved != EAI_AGAIN)
      CADENZA_USER_ERROR(context << ": MASTER_ADDR '" << launch.master_addr
                                 << "' does not resolve: " << ::gai_strerror(resolved));
    if (resolved == EAI_AGAIN) failure = ::gai_strerror(resolved);
    for (const addrinfo* address = addresses.get(); address != nullptr; address = address->ai_next) {
      const Deadline attempt_deadline(std::min(deadline.end(), Clock::now() + kAttemptLimit));
      Socket socket = try_connect(*address, attempt_deadline, context, failure);
      if (socket.is_open()) return socket;
    }
    if (deadline.passed())
      CADENZA_USER_ERROR(context << ": no answer from rank 0 within " << format_seconds(timeout_seconds)
                                 << " s (is rank 0 running, and is the port open?); last attempt: "
                                 << failure);
    std::this_thread::sleep_for(std::min<Clock::duration>(kRetryPause, deadline.left()));
  }
}

std::vector<char> receive_from_root(const LaunchInfo& launch, double timeout_seconds) {
  const bool ipv6_literal = launch.master_addr.find(':') != std::string::npos;
  const std::string context =
      "rendezvous with " + (ipv6_literal ? "[" + launch.master_addr + "]" : launch.master_addr) + ":" +
      std::to_string(rendezvous_port(launch).port);
  const Socket socket = connect_to_root(launch, timeout_seconds, context);

  const Deadline deadline(timeout_seconds);
  const std::string hung_up = context + ": rank 0 closed the connection before sending its payload "
                                        "(see rank 0's error)";
  const std::string too_slow = context + ": connected, but rank 0 sent nothing within " +
                               format_seconds(timeout_seconds) + " s (did every rank start?)";
  std::array<char, kHelloBytes> hello{};
  std::copy(kMagic.begin(), kMagic.end(), hello.begin());
  put_u32(hello.data() + 4, static_cast<uint32_t>(launch.rank));
  put_u32(hello.data() + 8, static_cast<uint32_t>(launch.world_size));
  const Transfer greeted = send_all(socket, hello.data(), hello.size(), deadline, context);
  if (greeted == Transfer::closed) throw UserError(hung_up);
  if (greeted == Transfer::timed_out) throw UserError(too_slow);

  std::array<char, kHeaderBytes> header{};
  const Transfer headed = receive_exact(socket, header.data(), header.size(), deadline, context);
  if (headed == Transfer::closed) throw UserError(hung_up);
  if (headed == Transfer::timed_out) throw UserError(too_slow);
  if (!has_magic(header.data()))
    CADENZA_USER_ERROR(context << ": the answer does not start with CDZ1; something other than "
                                  "cadenza's rank 0 is listening on that port");
  std::vector<char> payload(get_u32(header.data() + 4));
  const Transfer received = receive_exact(socket, payload.data(), payload.size(), deadline, context);
  if (received == Transfer::closed) throw UserError(hung_up);
  if (received == Transfer::timed_out) throw UserError(too_slow);
  return payload;
}

}  // namespace

RendezvousPort rendezvous_port(const LaunchInfo& launch) {
  if (!launch.agent_store) return {launch.master_port, "MASTER_PORT"};
  return {launch.master_port + 1, "MASTER_PORT + 1: torchrun's agent store holds MASTER_PORT = " +
                                      std::to_string(launch.master_port) + " (TORCHELASTIC_USE_AGENT_STORE=True)"};
}

std::vector<char> share_from_root(const LaunchInfo& launch, const std::vector<char>& payload,
                                  double timeout_seconds) {
  CADENZA_CHECK(launch.world_size >= 1 && launch.rank >= 0 && launch.rank < launch.world_size,
                "rank " << launch.rank << " of " << launch.world_size);
  CADENZA_CHECK(std::isfinite(timeout_seconds) && timeout_seconds >= 0,
                "rendezvous timeout " << timeout_seconds << " s");
  if (launch.world_size == 1) return payload;
  if (launch.master_addr.empty() || launch.master_port == 0)
    CADENZA_USER_ERROR("a " << launch.world_size << "-process job launched by " << launch.launcher
                            << " needs MASTER_ADDR and MASTER_PORT for its rendezvous; set them to "
                               "rank 0's host and a free TCP port there");
  CADENZA_CHECK(launch.master_port >= 1 && launch.master_port <= (launch.agent_store ? 65534 : 65535),
                "MASTER_PORT " << launch.master_port);
  return launch.rank == 0 ? serve_as_root(launch, payload, timeout_seconds)
                          : receive_from_root(launch, timeout_seconds);
}

}  // namespace cadenza
