// Shared code for the benchmark binaries: options, a timer that warms up and runs the
// peers interleaved, DoNotOptimize barriers, system information, and the table and
// JSON printers.
//
//   bench::options opt = bench::parse(argc, argv, "switch_overhead", 100'000'000);
//   bench::suite s(opt);
//   s.add("serial", [&](long long n) { ... }, /*ops per n=*/1);
//   s.run();  s.print();
#ifndef GREENLETS_BENCH_COMMON_BENCH_HPP
#define GREENLETS_BENCH_COMMON_BENCH_HPP

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/version.hpp>

#include "greenlets/version.hpp"

#if __has_include("build_info.hpp")
#include "build_info.hpp"
#endif
#ifndef GREENLETS_BENCH_FLAGS
#define GREENLETS_BENCH_FLAGS "(unknown: built outside CMake)"
#endif
#ifndef GREENLETS_BENCH_BUILD_TYPE
#define GREENLETS_BENCH_BUILD_TYPE "(unknown)"
#endif

namespace bench {

/// Keeps `value` alive and opaque to the optimiser (Google Benchmark's DoNotOptimize).
template <class T>
inline void do_not_optimize(T const& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

/// Same, for a value the compiler must also assume was changed.
template <class T>
inline void do_not_optimize(T& value) {
  if constexpr (std::is_arithmetic_v<T> || std::is_pointer_v<T>)
    asm volatile("" : "+r"(value) : : "memory");
  else
    asm volatile("" : "+m"(value) : : "memory");
}

/// Forces pending writes to memory (a compiler barrier, no instruction).
inline void clobber() { asm volatile("" : : : "memory"); }

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct options {
  std::string benchmark;
  long long n = 0;
  int reps = 5;
  bool json = false;
  bool no_python = false;
  std::vector<std::string> rest;  // options a binary parses itself
};

inline void usage(const options& o, long long default_n, const char* extra) {
  std::printf(
      "usage: %s [--n N] [--reps R] [--json] [--no-python]%s\n"
      "  --n N       problem size (default %lld)\n"
      "  --reps R    timed repetitions of every column, interleaved (default 5)\n"
      "  --json      print one JSON object instead of the table\n"
      "  --no-python skip the Python columns\n",
      o.benchmark.c_str(), extra ? extra : "", default_n);
}

/// Parses the options every binary shares; unknown ones go to `rest`.
inline options parse(int argc, char** argv, const char* name, long long default_n,
                     const char* extra_usage = nullptr) {
  options o;
  o.benchmark = name;
  o.n = default_n;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&](const char* what) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: %s needs a value\n", name, what);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--n") {
      o.n = static_cast<long long>(std::stod(need("--n")));
    } else if (a == "--reps") {
      o.reps = std::stoi(need("--reps"));
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--no-python") {
      o.no_python = true;
    } else if (a == "--help" || a == "-h") {
      usage(o, default_n, extra_usage);
      std::exit(0);
    } else {
      o.rest.push_back(a);
    }
  }
  if (o.n < 1 || o.reps < 1) {
    std::fprintf(stderr, "%s: --n and --reps must be positive\n", name);
    std::exit(2);
  }
  return o;
}

inline std::string compiler() {
#if defined(__clang__)
  return std::string("clang++ ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("g++ ") + __VERSION__;
#else
  return "unknown compiler";
#endif
}

inline bool optimized_build() {
#if defined(__OPTIMIZE__)
  return true;
#else
  return false;
#endif
}

inline std::string read_first_line_with(const char* path, const char* prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return line;
  return "";
}

inline std::string cpu_model() {
  std::string line = read_first_line_with("/proc/cpuinfo", "model name");
  auto colon = line.find(':');
  return colon == std::string::npos ? "unknown" : line.substr(colon + 2);
}

inline std::string kernel() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return std::string(u.sysname) + " " + u.release;
}

inline std::string fmt_count(long long n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

/// Prints what a reader needs to judge the numbers: compiler, flags, build type, N.
/// Warns loudly when the code was built without optimisation.
inline void print_header(const options& o, const std::string& extra = "") {
  std::FILE* out = o.json ? stderr : stdout;
  std::fprintf(out, "== %s ==\n", o.benchmark.c_str());
  std::fprintf(out, "compiler:   %s\n", compiler().c_str());
  std::fprintf(out, "flags:      %s\n", GREENLETS_BENCH_FLAGS);
  std::fprintf(out, "build type: %s%s%s\n", GREENLETS_BENCH_BUILD_TYPE,
               optimized_build() ? " (optimised)" : " (NOT optimised)",
#ifdef NDEBUG
               ", NDEBUG"
#else
               ", asserts on"
#endif
  );
  std::fprintf(out, "libraries:  greenlets %d.%d.%d, Boost %d.%d.%d\n", GREENLETS_VERSION_MAJOR,
               GREENLETS_VERSION_MINOR, GREENLETS_VERSION_PATCH, BOOST_VERSION / 100000,
               BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100);
  std::fprintf(out, "machine:    %s, %ld CPUs, %s\n", cpu_model().c_str(),
               ::sysconf(_SC_NPROCESSORS_ONLN), kernel().c_str());
  std::fprintf(out, "N:          %s, %d repetitions (min and median reported)\n",
               fmt_count(o.n).c_str(), o.reps);
  if (!extra.empty()) std::fprintf(out, "%s", extra.c_str());
  if (!optimized_build()) {
    std::fprintf(out,
                 "\n"
                 "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                 "!!  WARNING: this is an UNOPTIMISED (Debug) build. The numbers below   !!\n"
                 "!!  say nothing about the library. Configure with                     !!\n"
                 "!!  -DCMAKE_BUILD_TYPE=Release and run again.                         !!\n"
                 "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
  }
  std::fprintf(out, "\n");
  std::fflush(out);
}

inline double min_of(std::vector<double> v) { return *std::min_element(v.begin(), v.end()); }

inline double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/// One column of a comparison: its samples, in seconds, at the full N.
struct result {
  std::string name;
  std::vector<double> seconds;  // per repetition, scaled to the full N when n_measured < N
  long long n_measured = 0;     // the N this column really ran with
  double ops_per_n = 1;         // operations per unit of N (ns_per_op = seconds / (N * this))
  std::string serial_ref;       // the row the "÷ serial" ratio uses
  std::string note;
  std::map<std::string, double> extra;  // extra JSON fields (for instance ns_per_switch)
  double min() const { return min_of(seconds); }
  double median() const { return median_of(seconds); }
};

/// A set of columns run interleaved: warm-up, then R rounds of every column in turn,
/// so noise falls on all of them alike.
class suite {
 public:
  explicit suite(options o) : opt_(std::move(o)) {}

  const options& opts() const { return opt_; }

  /// Adds a column; `run(n)` does the whole job for size n. `n` may be smaller than N
  /// for slow peers (the seconds are then scaled up linearly, and the table says so).
  void add(std::string name, std::function<void(long long)> run, double ops_per_n = 1,
           long long n = 0, std::string serial_ref = "serial", std::string note = "") {
    column c;
    c.r.name = std::move(name);
    c.r.n_measured = n > 0 ? n : opt_.n;
    c.r.ops_per_n = ops_per_n;
    c.r.serial_ref = std::move(serial_ref);
    c.r.note = std::move(note);
    c.run = std::move(run);
    columns_.push_back(std::move(c));
  }

  /// Adds a column measured elsewhere (a Python process): samples at size `n`.
  void add_samples(std::string name, std::vector<double> samples, long long n, double ops_per_n,
                   std::string serial_ref, std::string note) {
    result r;
    r.name = std::move(name);
    r.n_measured = n;
    r.ops_per_n = ops_per_n;
    r.serial_ref = std::move(serial_ref);
    r.note = std::move(note);
    const double scale = static_cast<double>(opt_.n) / static_cast<double>(n);
    for (double s : samples) r.seconds.push_back(s * scale);
    external_.push_back(std::move(r));
  }

  void run() {
    std::FILE* out = opt_.json ? stderr : stdout;
    // Warm-up: every column once at a tenth of its size (caches, page faults, stack pools).
    for (auto& c : columns_) c.run(std::max(1LL, c.r.n_measured / 10));
    for (int rep = 0; rep < opt_.reps; ++rep) {
      for (auto& c : columns_) {
        const double t0 = now_seconds();
        c.run(c.r.n_measured);
        const double t1 = now_seconds();
        const double scale = static_cast<double>(opt_.n) / static_cast<double>(c.r.n_measured);
        c.r.seconds.push_back((t1 - t0) * scale);
      }
      if (!opt_.json) {
        std::fprintf(out, "  round %d/%d done\n", rep + 1, opt_.reps);
        std::fflush(out);
      }
    }
  }

  std::vector<result> results() const {
    std::vector<result> rs;
    for (auto& c : columns_) rs.push_back(c.r);
    for (auto& r : external_) rs.push_back(r);
    return rs;
  }

  const result* find(const std::string& name) const {
    for (auto& c : columns_)
      if (c.r.name == name) return &c.r;
    for (auto& r : external_)
      if (r.name == name) return &r;
    return nullptr;
  }

  /// Records an extra JSON field on a column (after run()).
  void set_extra(const std::string& name, const std::string& key, double v) {
    for (auto& c : columns_)
      if (c.r.name == name) c.r.extra[key] = v;
    for (auto& r : external_)
      if (r.name == name) r.extra[key] = v;
  }

  double ns_per_op(const result& r, double seconds) const {
    return seconds * 1e9 / (static_cast<double>(opt_.n) * r.ops_per_n);
  }

  /// The table (or, with --json, the JSON object). `op` names the operation of ns/op.
  void print(const std::string& op, const std::string& extra_col = "") const {
    if (opt_.json) {
      print_json();
      return;
    }
    const result* fiber = find("raw_fiber");
    std::printf("%-18s %11s %11s %10s %9s %9s", "column", "min s", "median s", ("ns/" + op).c_str(),
                "÷fiber", "÷serial");
    if (!extra_col.empty()) std::printf(" %14s", extra_col.c_str());
    std::printf("  note\n");
    for (const result& r : results()) {
      const double med = r.median();
      std::printf("%-18s %11.4f %11.4f %10.2f", r.name.c_str(), r.min(), med, ns_per_op(r, med));
      if (fiber)
        std::printf(" %9.2f", med / fiber->median());
      else
        std::printf(" %9s", "-");
      const result* serial = find(r.serial_ref);
      if (serial)
        std::printf(" %9.2f", med / serial->median());
      else
        std::printf(" %9s", "-");
      if (!extra_col.empty()) {
        auto it = r.extra.find(extra_col);
        if (it != r.extra.end())
          std::printf(" %14.2f", it->second);
        else
          std::printf(" %14s", "-");
      }
      std::string note = r.note;
      if (r.n_measured != opt_.n)
        note = "measured at n=" + fmt_count(r.n_measured) + ", scaled to N" +
               (note.empty() ? "" : "; " + note);
      std::printf("  %s\n", note.c_str());
    }
    std::printf(
        "\nseconds are for the full N; ns/%s and the ratios use medians; ÷fiber is against "
        "raw_fiber, ÷serial against the serial row of the same language.\n",
        op.c_str());
  }

  void print_json() const {
    std::printf("{\"benchmark\": \"%s\", \"n\": %lld, \"reps\": %d, \"results\": [",
                opt_.benchmark.c_str(), opt_.n, opt_.reps);
    bool first = true;
    for (const result& r : results()) {
      std::printf(
          "%s\n  {\"name\": \"%s\", \"seconds\": %.6g, \"ns_per_op\": %.6g, "
          "\"min\": %.6g, \"median\": %.6g, \"n_measured\": %lld",
          first ? "" : ",", r.name.c_str(), r.median(), ns_per_op(r, r.median()), r.min(),
          r.median(), r.n_measured);
      for (auto& [k, v] : r.extra) std::printf(", \"%s\": %.6g", k.c_str(), v);
      std::printf("}");
      first = false;
    }
    std::printf("\n]}\n");
  }

 private:
  struct column {
    result r;
    std::function<void(long long)> run;
  };
  options opt_;
  std::vector<column> columns_;
  std::vector<result> external_;
};

inline const char* python_path() { return "/usr/bin/python3"; }

/// benchmarks/ in the source tree: from CMake, or else from where this header was found.
inline std::string source_dir() {
#ifdef GREENLETS_BENCH_SOURCE_DIR
  return GREENLETS_BENCH_SOURCE_DIR;
#else
  std::string here = __FILE__;  // .../benchmarks/common/bench.hpp
  for (int i = 0; i < 2; ++i) {
    auto slash = here.find_last_of('/');
    here = slash == std::string::npos ? "." : here.substr(0, slash);
  }
  return here;
#endif
}

/// True when /usr/bin/python3 exists and can import every module in `modules`.
inline bool python_has(const std::string& modules) {
  if (::access(python_path(), X_OK) != 0) return false;
  std::string cmd = std::string(python_path()) + " -c 'import " + modules + "' 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

/// Runs benchmarks/python/<script> with `args`; it prints lines "<column> <s> <s> ...".
/// Returns column -> samples; empty on failure (and says why on stderr).
inline std::map<std::string, std::vector<double>> run_python(const std::string& script,
                                                             const std::string& args) {
  std::map<std::string, std::vector<double>> out;
  std::string cmd =
      std::string(python_path()) + " " + source_dir() + "/python/" + script + " " + args;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    std::fprintf(stderr, "could not run %s\n", cmd.c_str());
    return out;
  }
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) {
    std::istringstream line(buf);
    std::string name;
    line >> name;
    double s;
    while (line >> s) out[name].push_back(s);
  }
  if (::pclose(p) != 0) {
    std::fprintf(stderr, "%s failed\n", cmd.c_str());
    out.clear();
  }
  return out;
}

}  // namespace bench

#endif  // GREENLETS_BENCH_COMMON_BENCH_HPP
