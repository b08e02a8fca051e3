// memory_per_greenlet: how many suspended greenlets fit in one process, what each one
// costs in resident memory, and how fast they are created, for every stack allocator we
// ship and for a raw Boost.Context fiber and a Python greenlet beside them.
//
//   memory_per_greenlet [--n 100000,1000000] [--alloc default,pooled_stacks,...] [--json]
//
// Each greenlet touches ~1 KiB of its stack, then switches back to main and stays
// suspended. Each (allocator, count) runs in a fresh child process, so that one run's
// pools and heap do not flatter the next and a failure stays contained. A run stops
// safely when MemAvailable falls below 3 GiB. Resident memory per greenlet is the VmRSS
// delta divided by the count.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>

#include "greenlets/greenlet.hpp"

#include "common/bench.hpp"

namespace {

namespace ctx = boost::context;

constexpr long long safety_floor_kib = 3LL * 1024 * 1024;  // 3 GiB

long long status_kib(const char* path, const char* key) {
  std::string line = bench::read_first_line_with(path, key);
  if (line.empty()) return -1;
  return std::stoll(line.substr(std::strlen(key)));
}
long long rss_kib() { return status_kib("/proc/self/status", "VmRSS:"); }
long long mem_available_kib() { return status_kib("/proc/meminfo", "MemAvailable:"); }

long long map_count() {
  std::ifstream in("/proc/self/maps");
  long long lines = 0;
  std::string line;
  while (std::getline(in, line)) ++lines;
  return lines;
}

long long max_map_count() {
  std::ifstream in("/proc/sys/vm/max_map_count");
  long long v = -1;
  in >> v;
  return v;
}

// What one run reports, one line through a pipe: fields separated by tabs.
struct run_result {
  std::string name;
  long long requested = 0, created = 0;
  double create_s = 0, destroy_s = 0;
  double rss_per_bytes = 0;
  long long maps = 0;
  std::string stopped_by = "-";
};

std::string encode(const run_result& r) {
  std::ostringstream o;
  o << r.name << '\t' << r.requested << '\t' << r.created << '\t' << r.create_s << '\t'
    << r.destroy_s << '\t' << r.rss_per_bytes << '\t' << r.maps << '\t' << r.stopped_by << '\n';
  return o.str();
}

bool decode(const std::string& line, run_result& r) {
  std::istringstream in(line);
  std::string field;
  std::vector<std::string> f;
  while (std::getline(in, field, '\t')) f.push_back(field);
  if (f.size() != 8) return false;
  r.name = f[0];
  r.requested = std::stoll(f[1]);
  r.created = std::stoll(f[2]);
  r.create_s = std::stod(f[3]);
  r.destroy_s = std::stod(f[4]);
  r.rss_per_bytes = std::stod(f[5]);
  r.maps = std::stoll(f[6]);
  r.stopped_by = f[7];
  while (!r.stopped_by.empty() && r.stopped_by.back() == '\n') r.stopped_by.pop_back();
  return true;
}

inline void touch_1k() {
  char buf[1024];
  std::memset(buf, 0x5a, sizeof buf);
  bench::do_not_optimize(buf);
}

// Fills `all` with up to n suspended things made by `make`, watching memory; returns why
// it stopped early ("-" when it did not).
template <class Vec, class Make>
std::string fill(Vec& all, long long n, Make make) {
  try {
    for (long long i = 0; i < n; ++i) {
      if ((i & 4095) == 0 && mem_available_kib() < safety_floor_kib)
        return "safety stop: MemAvailable < 3 GiB after " + std::to_string(i);
      make(all);
    }
  } catch (const std::bad_alloc& e) {
    return std::string("std::bad_alloc (") + e.what() + ")";
  } catch (const std::exception& e) {
    return e.what();
  }
  return "-";
}

template <class Vec, class Make>
run_result measure(const std::string& name, long long n, Make make) {
  run_result r;
  r.name = name;
  r.requested = n;
  Vec all;
  all.reserve(static_cast<size_t>(n));
  const long long rss0 = rss_kib();
  const double t0 = bench::now_seconds();
  r.stopped_by = fill(all, n, make);
  const double t1 = bench::now_seconds();
  r.created = static_cast<long long>(all.size());
  const long long rss1 = rss_kib();
  r.maps = map_count();
  if (r.stopped_by != "-" && r.stopped_by.find("safety") == std::string::npos)
    r.stopped_by += " [maps in use: " + std::to_string(r.maps) +
                    ", vm.max_map_count: " + std::to_string(max_map_count()) + "]";
  for (char& c : r.stopped_by)
    if (c == '\t' || c == '\n') c = ' ';
  r.create_s = t1 - t0;
  // The vector's own buffer was reserved (and untouched pages are not resident) before
  // rss0, but its touched part is counted: one handle per greenlet, as a user would hold.
  r.rss_per_bytes =
      r.created ? static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(r.created) : 0;
  const double t2 = bench::now_seconds();
  all.clear();  // unwinds every suspended greenlet (or fiber)
  r.destroy_s = bench::now_seconds() - t2;
  return r;
}

run_result run_greenlets(const std::string& alloc, long long n) {
  greenlets::options opts;
  if (alloc == "pooled_stacks") opts.allocator = greenlets::pooled_stacks();
  if (alloc == "guarded_stacks") opts.allocator = greenlets::guarded_stacks();
  if (alloc == "malloc_stacks") opts.allocator = greenlets::malloc_stacks();
  return measure<std::vector<greenlets::greenlet>>(
      "greenlet/" + alloc, n, [&opts](std::vector<greenlets::greenlet>& all) {
        greenlets::greenlet g(
            [] {
              touch_1k();
              greenlets::current().parent().switch_to();
            },
            opts);
        g.switch_to();
        all.push_back(std::move(g));
      });
}

run_result run_raw_fiber(long long n) {
  ctx::pooled_fixedsize_stack pool(greenlets::default_stack_size);
  return measure<std::vector<ctx::fiber>>(
      "raw_fiber/pooled_fixedsize", n, [&pool](std::vector<ctx::fiber>& all) {
        ctx::fiber f{std::allocator_arg, pool, [](ctx::fiber&& back) {
                       touch_1k();
                       back = std::move(back).resume();
                       return std::move(back);
                     }};
        all.push_back(std::move(f).resume());
      });
}

// Runs `job` in a child process and reads its one-line result.
template <class Job>
bool in_child(Job job, run_result& out, std::string& failure) {
  int fds[2];
  if (::pipe(fds) != 0) {
    failure = "pipe failed";
    return false;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string line = encode(job());
    ssize_t ignored = ::write(fds[1], line.data(), line.size());
    (void)ignored;
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t got;
  while ((got = ::read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(got));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    failure = "child killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
              strsignal(WTERMSIG(status)) + ")";
    return false;
  }
  if (!decode(text, out)) {
    failure = "child exited with status " + std::to_string(WEXITSTATUS(status)) + " and no result";
    return false;
  }
  return true;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bench::options opt = bench::parse(argc, argv, "memory_per_greenlet", 100000,
                                    " [--counts 100000,1000000] [--alloc a,b,...]");
  std::vector<long long> counts;
  std::vector<std::string> allocs = {"default",       "pooled_stacks", "guarded_stacks",
                                     "malloc_stacks", "raw_fiber",     "python"};
  bool counts_given = false;
  for (size_t i = 0; i < opt.rest.size(); ++i) {
    if (opt.rest[i] == "--counts" && i + 1 < opt.rest.size()) {
      for (auto& c : split(opt.rest[++i])) counts.push_back(static_cast<long long>(std::stod(c)));
      counts_given = true;
    } else if (opt.rest[i] == "--alloc" && i + 1 < opt.rest.size()) {
      allocs = split(opt.rest[++i]);
    } else {
      std::fprintf(stderr, "memory_per_greenlet: unknown option %s (try --help)\n",
                   opt.rest[i].c_str());
      return 2;
    }
  }
  if (!counts_given) counts = {opt.n};
  opt.n = *std::max_element(counts.begin(), counts.end());  // the header's N: the largest count

  std::string counts_text;
  for (long long c : counts) counts_text += (counts_text.empty() ? "" : ", ") + bench::fmt_count(c);
  std::string info =
      "counts:     " + counts_text + "\n" + "vm.max_map_count: " + std::to_string(max_map_count()) +
      "   MemAvailable at start: " + std::to_string(mem_available_kib() / 1024) + " MiB" +
      "   safety stop below 3 GiB available\n"
      "method:     each greenlet touches 1 KiB of its stack, switches back and "
      "stays suspended; one child process per row; stack size " +
      std::to_string(greenlets::default_stack_size / 1024) + " KiB\n";
  opt.reps = 1;  // one run per row: the header's repetition count says so
  bench::print_header(opt, info);

  std::vector<run_result> rows;
  std::FILE* out = opt.json ? stderr : stdout;
  for (long long n : counts) {
    for (const std::string& a : allocs) {
      run_result r;
      std::string failure;
      bool ok = true;
      if (a == "raw_fiber") {
        ok = in_child([n] { return run_raw_fiber(n); }, r, failure);
      } else if (a == "python") {
        if (opt.no_python || !bench::python_has("greenlet")) {
          std::fprintf(out, "python_greenlet skipped: %s\n",
                       opt.no_python ? "--no-python" : "/usr/bin/python3 cannot import greenlet");
          continue;
        }
        auto py = bench::run_python("memory_per_greenlet.py", std::to_string(n));
        auto it = py.find("python_greenlet");
        if (it == py.end() || it->second.size() != 4) {
          std::fprintf(out, "python_greenlet: the script failed\n");
          continue;
        }
        r.name = "python_greenlet";
        r.requested = n;
        r.created = static_cast<long long>(it->second[0]);
        r.create_s = it->second[1];
        r.destroy_s = it->second[2];
        r.rss_per_bytes = it->second[3];
        if (r.created < n) r.stopped_by = "safety stop: MemAvailable < 3 GiB";
      } else if (a == "default" || a == "pooled_stacks" || a == "guarded_stacks" ||
                 a == "malloc_stacks") {
        ok = in_child([&a, n] { return run_greenlets(a, n); }, r, failure);
      } else {
        std::fprintf(stderr, "memory_per_greenlet: unknown allocator %s\n", a.c_str());
        return 2;
      }
      if (!ok) {
        r.name = a == "raw_fiber" ? "raw_fiber/pooled_fixedsize" : "greenlet/" + a;
        r.requested = n;
        r.stopped_by = failure;
      }
      if (!opt.json) {
        std::printf("  %-28s n=%-9s created %-9s stopped by: %s\n", r.name.c_str(),
                    bench::fmt_count(n).c_str(), bench::fmt_count(r.created).c_str(),
                    r.stopped_by.c_str());
        std::fflush(stdout);
      }
      rows.push_back(r);
    }
  }

  if (opt.json) {
    std::printf(
        "{\"benchmark\": \"memory_per_greenlet\", \"n\": %lld, \"max_map_count\": %lld, "
        "\"results\": [",
        opt.n, max_map_count());
    bool first = true;
    for (auto& r : rows) {
      std::string why;
      for (char c : r.stopped_by) {
        if (c == '"' || c == '\\') why += '\\';
        why += c;
      }
      std::printf(
          "%s\n  {\"name\": \"%s\", \"n\": %lld, \"created\": %lld, \"seconds\": %.6g, "
          "\"ns_per_op\": %.6g, \"rss_bytes_per_greenlet\": %.1f, "
          "\"destroy_seconds\": %.6g, \"maps\": %lld, \"stopped_by\": \"%s\"}",
          first ? "" : ",", r.name.c_str(), r.requested, r.created, r.create_s,
          r.created ? r.create_s * 1e9 / static_cast<double>(r.created) : 0.0, r.rss_per_bytes,
          r.destroy_s, r.maps, why.c_str());
      first = false;
    }
    std::printf("\n]}\n");
    return 0;
  }

  std::printf("\n%-28s %10s %10s %10s %8s %10s %10s %8s %8s\n", "row", "requested", "created",
              "RSS/each", "÷fiber", "create µs", "destroy µs", "÷fiber", "maps");
  for (auto& r : rows) {
    const run_result* fiber = nullptr;
    for (auto& f : rows)
      if (f.name == "raw_fiber/pooled_fixedsize" && f.requested == r.requested && f.created)
        fiber = &f;
    const double c = r.created ? static_cast<double>(r.created) : 1;
    const double create_us = r.create_s * 1e6 / c;
    std::printf("%-28s %10s %10s %8.2f K", r.name.c_str(), bench::fmt_count(r.requested).c_str(),
                bench::fmt_count(r.created).c_str(), r.rss_per_bytes / 1024);
    if (fiber && fiber->rss_per_bytes > 0)
      std::printf(" %8.2f", r.rss_per_bytes / fiber->rss_per_bytes);
    else
      std::printf(" %8s", "-");
    std::printf(" %10.2f %10.2f", create_us, r.destroy_s * 1e6 / c);
    if (fiber)
      std::printf(" %8.2f",
                  create_us / (fiber->create_s * 1e6 / static_cast<double>(fiber->created)));
    else
      std::printf(" %8s", "-");
    std::printf(" %8s\n", r.maps ? bench::fmt_count(r.maps).c_str() : "-");
  }
  std::printf(
      "RSS/each: VmRSS delta / created (KiB). create µs: create + start + suspend, including "
      "first-touch page faults. destroy µs: dropping the handle (unwinds the stack). ÷fiber: "
      "against raw_fiber/pooled_fixedsize at the same count. There is no serial row here.\n");
  return 0;
}
