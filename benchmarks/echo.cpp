// echo: an echo server's throughput, latency and CPU per request — this library's hub
// (one task per connection) beside a plain single-threaded epoll server, a plain
// io_uring server (when built with liburing), a thread-per-connection server and the
// tutorial's gevent server, under the same load.
//
//   echo [--conns 500,10000] [--seconds 2] [--servers greenlets,epoll,uring,threads,gevent]
//        [--server-cpus 0] [--client-cpus 1] [--reps 1] [--n 5000000] [--json] [--no-python]
//
// Each server runs in a process of its own, pinned to CPU 0 (as `taskset -c 0` does;
// --server-cpus), the load generator here, pinned to CPU 1 (--client-cpus). The server
// `greenlets_threads` (not in the default list) runs a hub per server CPU, one thread
// each pinned to it, each with a listener on the same port (SO_REUSEPORT). The load generator is
// one epoll thread: it opens the connections (TCP_NODELAY), echoes 64 bytes once on each to warm
// up, then runs a closed loop for --seconds (at most --n requests): every connection
// sends 64 bytes, waits for all 64 to come back (and checks them), and sends again.
// A request's latency is from its write to its last byte read. Server CPU per request
// is the server process's user + system time (/proc/<pid>/stat, all its threads) over
// the measured window, divided by the requests completed in it.
//
// --json prints {"benchmark", "n", "reps", "results": [...]}, one result per server and
// connection count named "<server>/<conns>", with req_per_s, p50_us, p99_us,
// server_cpu_us_per_req, client_cpu_share and errors (the medians over --reps runs; errors
// summed).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <greenlets/greenlets.hpp>

#ifdef GREENLETS_BENCH_HAVE_URING
#include <liburing.h>
#endif

#include "build_info.hpp"
#include "common/bench.hpp"
#include "common/process.hpp"

namespace {

constexpr std::size_t message_size = 64;
constexpr int backlog = 4096;

// ---- the servers (each runs in a forked child, reports its port through `report`) ----

void report_port(int fd, std::uint16_t port) {
  const std::string s = std::to_string(port) + "\n";
  if (::write(fd, s.data(), s.size()) < 0) std::_Exit(3);
  ::close(fd);
}

// This library: one task per connection, read_some / write_all.
void serve_greenlets(greenlets::tcp_listener& l);

void run_greenlets(int report) {
  greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 0, {backlog, false});
  report_port(report, l.local_endpoint().port());
  serve_greenlets(l);
}

void serve_greenlets(greenlets::tcp_listener& l) {
  for (;;) {
    greenlets::spawn(
        [](greenlets::tcp_socket c) {
          c.set_no_delay(true);
          char buf[4096];
          try {
            for (std::size_t n; (n = c.read_some(buf, sizeof buf)) != 0;) c.write_all(buf, n);
          } catch (const std::system_error&) {
            // a reset: the connection ends
          }
        },
        l.accept());
  }
}

// A hub per CPU of the server: one thread each, pinned, each with its own listener on
// the same port (SO_REUSEPORT): the kernel spreads the connections over them.
void run_greenlets_threads(int report, const std::vector<int>& cpus) {
  std::promise<std::uint16_t> bound;
  std::vector<std::thread> threads;
  std::uint16_t port = 0;
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    threads.emplace_back([&, i, first = i == 0] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpus[i], &set);
      ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
      greenlets::tcp_listener l = greenlets::listen("127.0.0.1", first ? 0 : port, {backlog, true});
      if (first) bound.set_value(l.local_endpoint().port());
      serve_greenlets(l);
    });
    if (i == 0) port = bound.get_future().get();
  }
  report_port(report, port);
  for (auto& t : threads) t.join();
}

int raw_listener(std::uint16_t& port, int flags) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0) {
    std::perror("echo: listen");
    std::_Exit(3);
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// The limit for one core: one thread, level-triggered epoll, non-blocking fds.
void run_epoll(int report) {
  std::uint16_t port;
  const int lfd = raw_listener(port, SOCK_NONBLOCK);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  report_port(report, port);
  epoll_event events[256];
  char buf[4096];
  const int one = 1;
  for (;;) {
    const int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        for (int c; (c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event ce{};
          ce.events = EPOLLIN;
          ce.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      const ssize_t r = ::read(fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        ::close(fd);
        continue;
      }
      // 64-byte replies never fill a socket buffer: a short write would be a bug here.
      for (ssize_t done = 0; done < r;) {
        const ssize_t w = ::send(fd, buf + done, static_cast<std::size_t>(r - done), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) break;
        if (w > 0) done += w;
      }
    }
  }
}

#ifdef GREENLETS_BENCH_HAVE_URING
// The io_uring limit for one core: one thread, one ring (single issuer, completions
// run only when it waits), a multishot accept, a multishot recv per connection (armed
// once) into a ring of provided buffers, each reply sent from the buffer it arrived in,
// which goes back to the ring when the send completes. One io_uring_enter a batch: no
// system call per request.
void run_uring(int report) {
  std::uint16_t port;
  const int lfd = raw_listener(port, 0);
  io_uring ring;
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
  params.cq_entries = 65536;
  if (const int e = io_uring_queue_init_params(4096, &ring, &params); e != 0) {
    // No io_uring here (disabled, filtered, or a kernel before 6.1): the table skips the row.
    std::fprintf(stderr, "echo: io_uring_queue_init: %s\n", std::strerror(-e));
    std::_Exit(3);
  }
  // A request is 64 bytes and each connection has one in flight: 256-byte buffers, more
  // than connections. Running out would end a recv with ENOBUFS, and it is armed again.
  constexpr unsigned buffers = 32768;
  constexpr unsigned buffer_size = 256;
  void* ring_memory = nullptr;
  if (::posix_memalign(&ring_memory, 4096, buffers * sizeof(io_uring_buf)) != 0) std::_Exit(3);
  auto* br = static_cast<io_uring_buf_ring*>(ring_memory);
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(br);
  reg.ring_entries = buffers;
  reg.bgid = 0;
  if (const int e = io_uring_register_buf_ring(&ring, &reg, 0); e != 0) {
    std::fprintf(stderr, "echo: io_uring_register_buf_ring: %s\n", std::strerror(-e));
    std::_Exit(3);
  }
  std::vector<char> storage(std::size_t{buffers} * buffer_size);
  const int mask = io_uring_buf_ring_mask(buffers);
  auto give_back = [&](unsigned id, int offset) {
    io_uring_buf_ring_add(br, storage.data() + std::size_t{id} * buffer_size, buffer_size,
                          static_cast<unsigned short>(id), mask, offset);
  };
  for (unsigned id = 0; id < buffers; ++id) give_back(id, static_cast<int>(id));
  io_uring_buf_ring_advance(br, static_cast<int>(buffers));
  report_port(report, port);

  auto next_sqe = [&] {
    io_uring_sqe* e = io_uring_get_sqe(&ring);
    if (e == nullptr) {
      io_uring_submit(&ring);
      e = io_uring_get_sqe(&ring);
    }
    return e;
  };
  // user data: ~0 for the accept; else fd << 32 | buffer id << 1 | 1 for a send, fd << 32
  // for the recv.
  constexpr std::uint64_t accept_tag = ~std::uint64_t{0};
  auto arm_accept = [&] {
    io_uring_sqe* e = next_sqe();
    io_uring_prep_multishot_accept(e, lfd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(e, accept_tag);
  };
  auto arm_recv = [&](int fd) {
    io_uring_sqe* e = next_sqe();
    io_uring_prep_recv_multishot(e, fd, nullptr, 0, 0);
    e->flags |= IOSQE_BUFFER_SELECT;
    e->buf_group = 0;
    io_uring_sqe_set_data64(e, static_cast<std::uint64_t>(fd) << 32);
  };
  arm_accept();
  const int one = 1;
  for (int returned = 0;;) {
    if (returned != 0) io_uring_buf_ring_advance(br, std::exchange(returned, 0));
    io_uring_submit_and_wait(&ring, 1);
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      const std::uint64_t tag = io_uring_cqe_get_data64(cqe);
      const int res = cqe->res;
      const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
      if (tag == accept_tag) {
        if (res >= 0) {
          ::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          arm_recv(res);
        }
        if (!more) arm_accept();
        continue;
      }
      const int fd = static_cast<int>(tag >> 32);
      if ((tag & 1) != 0) {  // a send ended (64-byte replies are never short): its buffer goes back
        give_back(static_cast<unsigned>(tag >> 1) & 0xffffu, returned++);
        continue;
      }
      if (res == -ENOBUFS) {
        arm_recv(fd);
        continue;
      }
      if (res <= 0) {  // end of stream or an error
        ::close(fd);
        continue;
      }
      const unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
      io_uring_sqe* e = next_sqe();
      io_uring_prep_send(e, fd, storage.data() + std::size_t{id} * buffer_size,
                         static_cast<std::size_t>(res), MSG_NOSIGNAL);
      io_uring_sqe_set_data64(e, (static_cast<std::uint64_t>(fd) << 32) | (id << 1) | 1);
      if (!more) arm_recv(fd);
    }
    io_uring_cq_advance(&ring, seen);
  }
}
#endif

// A thread per connection, blocking calls, the default 8 MiB stacks.
void run_threads(int report) {
  std::uint16_t port;
  const int lfd = raw_listener(port, 0);
  report_port(report, port);
  const int one = 1;
  for (;;) {
    const int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::thread([c] {
      char buf[4096];
      for (ssize_t r; (r = ::read(c, buf, sizeof buf)) > 0;) {
        if (::send(c, buf, static_cast<std::size_t>(r), MSG_NOSIGNAL) != r) break;
      }
      ::close(c);
    }).detach();
  }
}

void pin_to(const std::vector<int>& cpus) {
  if (cpus.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

struct server {
  pid_t pid = -1;
  std::uint16_t port = 0;
};

server start(const std::string& kind, const std::vector<int>& cpus) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    pin_to(cpus);
    if (kind == "gevent") {
      ::dup2(fds[1], STDOUT_FILENO);
      const std::string script = bench::source_dir() + "/python/echo_server.py";
      ::execl(bench::python_path(), bench::python_path(), script.c_str(), nullptr);
      std::_Exit(4);
    }
    if (kind == "greenlets") run_greenlets(fds[1]);
    if (kind == "epoll") run_epoll(fds[1]);
    if (kind == "threads") run_threads(fds[1]);
#ifdef GREENLETS_BENCH_HAVE_URING
    if (kind == "uring") run_uring(fds[1]);
#endif
    if (kind == "greenlets_threads") {
      std::vector<int> each = cpus;
      if (each.empty()) each = {0};
      run_greenlets_threads(fds[1], each);
    }
    std::_Exit(5);
  }
  ::close(fds[1]);
  server s;
  s.pid = pid;
  char buf[32] = {};
  std::size_t got = 0;
  while (got < sizeof buf - 1) {
    const ssize_t r = ::read(fds[0], buf + got, sizeof buf - 1 - got);
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
    if (std::memchr(buf, '\n', got) != nullptr) break;
  }
  ::close(fds[0]);
  s.port = static_cast<std::uint16_t>(std::atoi(buf));
  return s;
}

void stop(server& s) { bench::kill_and_reap(s.pid); }

double self_cpu_us() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// ---- the load generator ----

struct outcome {
  double req_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double server_cpu_us_per_req = 0;
  double client_cpu_share = 0;
  long long errors = 0;
};

using clock_type = std::chrono::steady_clock;

outcome load(const server& srv, int conns, double seconds, long long max_requests) {
  outcome o;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(srv.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int one = 1;
  std::vector<int> fds;
  char msg[message_size];
  for (std::size_t i = 0; i < message_size; ++i) msg[i] = static_cast<char>('a' + i % 26);
  for (int i = 0; i < conns; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      if (fd >= 0) ::close(fd);
      ++o.errors;
      continue;
    }
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fds.push_back(fd);
  }
  // Warm-up: one echo per connection, blocking.
  for (int fd : fds) {
    char back[message_size];
    std::size_t got = 0;
    if (::send(fd, msg, message_size, MSG_NOSIGNAL) != static_cast<ssize_t>(message_size)) {
      ++o.errors;
      continue;
    }
    while (got < message_size) {
      const ssize_t r = ::read(fd, back + got, message_size - got);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    if (got != message_size) ++o.errors;
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  struct conn_state {
    clock_type::time_point sent;
    std::size_t got = 0;
    bool live = true;
  };
  std::vector<conn_state> st(fds.size());
  for (std::size_t i = 0; i < fds.size(); ++i) {
    ::fcntl(fds[i], F_SETFL, ::fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
  }
  std::vector<float> latencies;
  latencies.reserve(static_cast<std::size_t>(std::min<long long>(max_requests, 20'000'000)));
  const double server0 = bench::process_cpu_us(srv.pid);
  const double client0 = self_cpu_us();
  const auto start = clock_type::now();
  const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                               std::chrono::duration<double>(seconds));
  for (std::size_t i = 0; i < fds.size(); ++i) {
    st[i].sent = clock_type::now();
    if (::send(fds[i], msg, message_size, MSG_NOSIGNAL) != static_cast<ssize_t>(message_size)) {
      st[i].live = false;
      ++o.errors;
    }
  }
  long long done = 0;
  bool sending = true;
  std::size_t outstanding = fds.size();
  epoll_event events[512];
  char back[message_size];
  while (outstanding > 0) {
    const int n = ::epoll_wait(ep, events, 512, 1000);
    if (n == 0) break;  // a second without a reply: the rest count as errors below
    const auto now = clock_type::now();
    if (sending && (now >= end || done >= max_requests)) sending = false;
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[k].data.u64;
      conn_state& c = st[i];
      if (!c.live) continue;
      const ssize_t r = ::read(fds[i], back, message_size - c.got);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        c.live = false;
        --outstanding;
        ++o.errors;
        continue;
      }
      if (std::memcmp(back, msg + c.got, static_cast<std::size_t>(r)) != 0) ++o.errors;
      c.got += static_cast<std::size_t>(r);
      if (c.got < message_size) continue;
      c.got = 0;
      ++done;
      latencies.push_back(std::chrono::duration<float, std::micro>(now - c.sent).count());
      if (!sending) {
        c.live = false;
        --outstanding;
        continue;
      }
      c.sent = now;
      if (::send(fds[i], msg, message_size, MSG_NOSIGNAL) != static_cast<ssize_t>(message_size)) {
        c.live = false;
        --outstanding;
        ++o.errors;
      }
    }
  }
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  const double server_cpu = bench::process_cpu_us(srv.pid) - server0;
  const double client_cpu = self_cpu_us() - client0;
  o.errors += static_cast<long long>(outstanding);
  for (int fd : fds) ::close(fd);
  ::close(ep);
  o.req_per_s = static_cast<double>(done) / elapsed;
  o.server_cpu_us_per_req = done > 0 ? server_cpu / static_cast<double>(done) : 0;
  o.client_cpu_share = client_cpu / (elapsed * 1e6);
  if (!latencies.empty()) {
    auto at = [&](double q) {
      const auto k = static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1));
      std::nth_element(latencies.begin(), latencies.begin() + static_cast<std::ptrdiff_t>(k),
                       latencies.end());
      return static_cast<double>(latencies[k]);
    };
    o.p50_us = at(0.50);
    o.p99_us = at(0.99);
  }
  return o;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

double median(std::vector<double> v) { return bench::median_of(std::move(v)); }

}  // namespace

int main(int argc, char** argv) {
  bench::options opt = bench::parse(
      argc, argv, "echo", 5'000'000,
      " [--conns 500,10000] [--seconds 2] [--servers greenlets,epoll,uring,threads,gevent]");
  if (opt.reps == 5) opt.reps = 1;  // the shared default is 5; one run each unless asked
  std::vector<int> conn_counts{500, 10000};
  double seconds = 2;
  std::vector<std::string> servers{"greenlets", "epoll", "threads", "gevent"};
#ifdef GREENLETS_BENCH_HAVE_URING
  servers.insert(servers.begin() + 2, "uring");
#endif
  std::vector<int> server_cpus{0};
  std::vector<int> client_cpus{1};
  for (std::size_t i = 0; i < opt.rest.size(); ++i) {
    const std::string& a = opt.rest[i];
    const bool has = i + 1 < opt.rest.size();
    if (a == "--conns" && has) {
      conn_counts.clear();
      for (auto& c : split(opt.rest[++i])) conn_counts.push_back(std::stoi(c));
    } else if (a == "--seconds" && has) {
      seconds = std::stod(opt.rest[++i]);
    } else if (a == "--servers" && has) {
      servers = split(opt.rest[++i]);
    } else if (a == "--server-cpus" && has) {
      server_cpus.clear();
      for (auto& c : split(opt.rest[++i])) server_cpus.push_back(std::stoi(c));
    } else if (a == "--client-cpus" && has) {
      client_cpus.clear();
      for (auto& c : split(opt.rest[++i])) client_cpus.push_back(std::stoi(c));
    } else {
      std::fprintf(stderr, "echo: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (opt.no_python || !bench::python_has("gevent")) {
    servers.erase(std::remove(servers.begin(), servers.end(), "gevent"), servers.end());
  }
  ::signal(SIGPIPE, SIG_IGN);
  if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    server_cpus.clear();
    client_cpus.clear();
  }
  pin_to(client_cpus);
  auto cpu_list = [](const std::vector<int>& cpus) {
    std::string out;
    for (int c : cpus) out += (out.empty() ? "" : ",") + std::to_string(c);
    return out.empty() ? std::string("any") : out;
  };
  {
    std::ostringstream extra;
    extra << "load:       " << message_size << "-byte ping-pong per connection, " << seconds
          << " s per run (at most N requests), " << opt.reps << " run(s) each\n"
          << "pinning:    server on CPU " << cpu_list(server_cpus) << ", load generator on CPU "
          << cpu_list(client_cpus) << "\n";
    bench::print_header(opt, extra.str());
  }

  struct row {
    std::string name;
    outcome o;
  };
  std::vector<row> rows;
  for (int conns : conn_counts) {
    for (const std::string& kind : servers) {
      std::vector<outcome> runs;
      for (int r = 0; r < opt.reps; ++r) {
        server s = start(kind, server_cpus);
        if (s.port == 0) {
          std::fprintf(stderr, "echo: the %s server did not start\n", kind.c_str());
          stop(s);
          break;
        }
        runs.push_back(load(s, conns, seconds, opt.n));
        stop(s);
      }
      if (runs.empty()) continue;
      row rw;
      rw.name = kind + "/" + std::to_string(conns);
      std::vector<double> rps, p50, p99, cpu, share;
      for (auto& o : runs) {
        rps.push_back(o.req_per_s);
        p50.push_back(o.p50_us);
        p99.push_back(o.p99_us);
        cpu.push_back(o.server_cpu_us_per_req);
        share.push_back(o.client_cpu_share);
        rw.o.errors += o.errors;
      }
      rw.o.req_per_s = median(rps);
      rw.o.p50_us = median(p50);
      rw.o.p99_us = median(p99);
      rw.o.server_cpu_us_per_req = median(cpu);
      rw.o.client_cpu_share = median(share);
      rows.push_back(rw);
      if (!opt.json) {
        std::printf("  %s done\n", rw.name.c_str());
        std::fflush(stdout);
      }
    }
  }

  auto find = [&](const std::string& name) -> const outcome* {
    for (auto& r : rows)
      if (r.name == name) return &r.o;
    return nullptr;
  };
  if (opt.json) {
    std::printf("{\"benchmark\": \"echo\", \"n\": %lld, \"reps\": %d, \"results\": [", opt.n,
                opt.reps);
    bool first = true;
    for (auto& r : rows) {
      std::printf(
          "%s\n  {\"name\": \"%s\", \"req_per_s\": %.6g, \"p50_us\": %.6g, \"p99_us\": %.6g, "
          "\"server_cpu_us_per_req\": %.6g, \"client_cpu_share\": %.3g, \"errors\": %lld}",
          first ? "" : ",", r.name.c_str(), r.o.req_per_s, r.o.p50_us, r.o.p99_us,
          r.o.server_cpu_us_per_req, r.o.client_cpu_share, r.o.errors);
      first = false;
    }
    std::printf("\n]}\n");
    return 0;
  }
  std::printf("\n%-18s %10s %9s %9s %11s %8s %8s %8s %8s %7s\n", "server/conns", "req/s", "p50 µs",
              "p99 µs", "CPU µs/req", "÷epoll", "÷threads", "÷gevent", "client", "errors");
  for (auto& r : rows) {
    const std::string conns = r.name.substr(r.name.find('/'));
    std::printf("%-18s %10.0f %9.1f %9.1f %11.2f", r.name.c_str(), r.o.req_per_s, r.o.p50_us,
                r.o.p99_us, r.o.server_cpu_us_per_req);
    for (const char* peer : {"epoll", "threads", "gevent"}) {
      const outcome* p = find(peer + conns);
      if (p != nullptr && p->server_cpu_us_per_req > 0) {
        std::printf(" %8.2f", r.o.server_cpu_us_per_req / p->server_cpu_us_per_req);
      } else {
        std::printf(" %8s", "-");
      }
    }
    std::printf(" %7.0f%% %7lld\n", r.o.client_cpu_share * 100, r.o.errors);
  }
  std::printf(
      "\nCPU µs/req is the server's CPU time per request; the ÷ columns divide it by the peer's "
      "at the same connection count (below 1: cheaper). client is the load generator's share "
      "of its core.\n");
}
