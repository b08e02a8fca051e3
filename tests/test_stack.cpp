// Stacks: sizes, the per-thread pool, the allocators, guard pages and custom
// resources (README "Stacks and limits"; stack.hpp).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

using greenlets::current;
using greenlets::greenlet;
using greenlets::greenlet_exit;

namespace {

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

std::uintptr_t address_of(const volatile void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// A place on the machine stack just below the caller's frame (a local's address would
// not do under AddressSanitizer, which can move locals to a "fake stack" on the heap).
[[gnu::noinline]] std::uintptr_t stack_position() { return address_of(__builtin_frame_address(0)); }

// Forwards to another allocator, recording each call.
class counting_stacks final : public greenlets::stack_resource {
 public:
  explicit counting_stacks(greenlets::stack_allocator inner = greenlets::guarded_stacks())
      : inner_(std::move(inner)) {}

  greenlets::stack_context allocate(std::size_t size) override {
    greenlets::stack_context sc = inner_.resource()->allocate(size);
    std::lock_guard<std::mutex> lock(mutex_);
    requested_.push_back(size);
    given_.push_back(sc);
    threads_.push_back(std::this_thread::get_id());
    ++allocated;
    return sc;
  }
  void deallocate(greenlets::stack_context sc) noexcept override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      threads_.push_back(std::this_thread::get_id());
    }
    ++deallocated;
    inner_.resource()->deallocate(sc);
  }

  std::vector<std::size_t> requested() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requested_;
  }
  std::vector<greenlets::stack_context> given() {
    std::lock_guard<std::mutex> lock(mutex_);
    return given_;
  }
  std::vector<std::thread::id> threads() {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_;
  }

  std::atomic<int> allocated{0};
  std::atomic<int> deallocated{0};

 private:
  greenlets::stack_allocator inner_;
  std::mutex mutex_;
  std::vector<std::size_t> requested_;
  std::vector<greenlets::stack_context> given_;
  std::vector<std::thread::id> threads_;
};

greenlets::options with(const std::shared_ptr<greenlets::stack_resource>& resource,
                        std::size_t stack_size = greenlets::default_stack_size) {
  greenlets::options opts;
  opts.stack_size = stack_size;
  opts.allocator = greenlets::stack_allocator(resource);
  return opts;
}

bool within(std::uintptr_t p, const greenlets::stack_context& sc) {
  const std::uintptr_t top = address_of(sc.sp);
  return p < top && p >= top - sc.size;
}

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GREENLETS_TEST_VALGRIND_QUIET(statement) \
  VALGRIND_DISABLE_ERROR_REPORTING;              \
  statement;                                     \
  VALGRIND_ENABLE_ERROR_REPORTING
#else
#define GREENLETS_TEST_VALGRIND_QUIET(statement) statement
#endif

// True if the byte at `p` can be read, asked of the kernel so that a guard page
// answers EFAULT instead of faulting.
bool readable(const void* p) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  // The byte's value does not matter (memcheck would call it undefined): only whether
  // the kernel can read it.
  GREENLETS_TEST_VALGRIND_QUIET(const ::ssize_t n = ::write(fds[1], p, 1));
  const int err = errno;
  ::close(fds[0]);
  ::close(fds[1]);
  if (n == 1) return true;
  REQUIRE(err == EFAULT);
  return false;
}

// Recursion that the optimiser cannot turn into a loop: each frame keeps a buffer and
// checks it after the call returns. Returns `limit` when every frame stayed intact.
[[gnu::noinline]] int recurse(int depth, int limit) {
  volatile char pad[256];
  pad[0] = static_cast<char>(depth);
  pad[sizeof pad - 1] = static_cast<char>(depth);
  if (depth >= limit) return depth;
  const int deepest = recurse(depth + 1, limit);
  const bool intact =
      pad[0] == static_cast<char>(depth) && pad[sizeof pad - 1] == static_cast<char>(depth);
  return intact ? deepest : -1;
}

}  // namespace

TEST_CASE("options.stack_size is honoured, rounded up to whole pages", "[stack]") {
  auto stacks = std::make_shared<counting_stacks>();
  const std::size_t page = page_size();

  SECTION("a greenlet can use a large local array within its size") {
    constexpr std::size_t big = 512 * 1024;  // twice the default stack
    greenlet g(
        [] {
          volatile char buffer[big];
          for (std::size_t i = 0; i < big; i += 1024) buffer[i] = static_cast<char>(i >> 10);
          std::size_t sum = 0;
          for (std::size_t i = 0; i < big; i += 1024) sum += static_cast<unsigned char>(buffer[i]);
          return sum;
        },
        with(stacks, 1024 * 1024));
    std::size_t expected = 0;
    for (std::size_t i = 0; i < big; i += 1024) expected += (i >> 10) & 0xff;
    CHECK(g.switch_to().get<std::size_t>() == expected);
    REQUIRE(stacks->given().size() == 1);
    CHECK(stacks->given()[0].size >= 1024 * 1024);
  }
  SECTION("sizes that are not whole pages are rounded up") {
    for (std::size_t asked : {std::size_t{100000}, std::size_t{64 * 1024 + 1}, std::size_t{1}}) {
      greenlet g([] { return stack_position(); }, with(stacks, asked));
      const std::uintptr_t local = g.switch_to().get<std::uintptr_t>();
      const greenlets::stack_context sc = stacks->given().back();
      const std::size_t requested = stacks->requested().back();
      INFO("asked " << asked << ", requested " << requested << ", got " << sc.size);
      CHECK(requested >= asked);
      CHECK(requested % page == 0);
      CHECK(requested < asked + page + 16 * 1024);
      CHECK(sc.size >= requested);
      CHECK(within(local, sc));
    }
    CHECK(stacks->requested()[0] == (100000 + page - 1) / page * page);
    CHECK(stacks->requested()[2] >= 16 * 1024);  // the documented minimum
  }
  CHECK(stacks->allocated == stacks->deallocated);
}

TEST_CASE("the default pool reuses the stacks of finished greenlets", "[stack]") {
  greenlets::trim_stack_pool();
  REQUIRE(greenlets::stack_pool_size() == 0);
  auto run = [] { return std::make_pair(stack_position(), greenlets::stack_pool_size()); };

  greenlet first(run);
  auto [first_address, pool_inside_first] =
      first.switch_to().get<std::pair<std::uintptr_t, std::size_t>>();
  CHECK(pool_inside_first == 0);
  CHECK(greenlets::stack_pool_size() == 1);  // its stack went back to the pool

  greenlet second(run);
  auto [second_address, pool_inside_second] =
      second.switch_to().get<std::pair<std::uintptr_t, std::size_t>>();
  CHECK(pool_inside_second == 0);  // it took the cached stack
  CHECK(greenlets::stack_pool_size() == 1);
  // The same stack: the same frame lands at (nearly) the same place.
  const std::uintptr_t distance = first_address > second_address ? first_address - second_address
                                                                 : second_address - first_address;
  CHECK(distance < greenlets::default_stack_size);

  SECTION("several at once, then trimmed") {
    std::vector<greenlet> suspended;
    for (int i = 0; i < 3; ++i) {
      suspended.emplace_back([] { current().parent().switch_to(); });
      suspended.back().switch_to();
    }
    CHECK(greenlets::stack_pool_size() == 0);
    for (greenlet& g : suspended) g.switch_to();
    CHECK(greenlets::stack_pool_size() == 3);
    greenlets::trim_stack_pool(1);
    CHECK(greenlets::stack_pool_size() == 1);
    greenlets::trim_stack_pool();
    CHECK(greenlets::stack_pool_size() == 0);
  }
  SECTION("unwinding a dropped greenlet returns its stack too") {
    {
      greenlet g([] { current().parent().switch_to(); });
      g.switch_to();
      CHECK(greenlets::stack_pool_size() == 0);
    }
    CHECK(greenlets::stack_pool_size() == 1);
  }
  SECTION("each thread has its own pool") {
    std::size_t theirs_at_start = 99;
    std::size_t theirs_after = 99;
    std::thread th([&] {
      theirs_at_start = greenlets::stack_pool_size();
      greenlet g([] {});
      g.switch_to();
      theirs_after = greenlets::stack_pool_size();
    });
    th.join();
    CHECK(theirs_at_start == 0);
    CHECK(theirs_after == 1);
    CHECK(greenlets::stack_pool_size() == 1);
  }
  SECTION("guarded_stacks() and malloc_stacks() leave the pool alone") {
    for (const greenlets::stack_allocator& a :
         {greenlets::guarded_stacks(), greenlets::malloc_stacks()}) {
      greenlets::options opts;
      opts.allocator = a;
      greenlet g([] { return greenlets::stack_pool_size(); }, opts);
      CHECK(g.switch_to().get<std::size_t>() == 1);
      CHECK(greenlets::stack_pool_size() == 1);
    }
  }
  greenlets::trim_stack_pool();
  CHECK(greenlets::stack_pool_size() == 0);
}

TEST_CASE("every allocator runs greenlets correctly", "[stack]") {
  struct named {
    const char* name;
    greenlets::stack_allocator allocator;
  };
  const named which = GENERATE(values<named>({{"default", greenlets::stack_allocator()},
                                              {"pooled", greenlets::pooled_stacks()},
                                              {"guarded", greenlets::guarded_stacks()},
                                              {"malloc", greenlets::malloc_stacks()}}));
  INFO(which.name);
  greenlets::options opts;
  opts.allocator = which.allocator;

  // Ping-pong with values.
  greenlet counter(
      [](int start) {
        for (int i = start;; ++i) current().parent().switch_to(i);
      },
      opts);
  CHECK(counter.switch_to(10).get<int>() == 10);
  CHECK(counter.switch_to().get<int>() == 11);

  // Some depth, well inside the default 256 KiB.
  greenlet deep([] { return recurse(0, 200); }, opts);
  CHECK(deep.switch_to().get<int>() == 200);

  // An exception escaping run, and one thrown in.
  greenlet thrower([] { throw std::runtime_error("from the greenlet"); }, opts);
  CHECK_THROWS_WITH(thrower.switch_to(), "from the greenlet");
  greenlet catcher(
      [] {
        try {
          current().parent().switch_to();
        } catch (const std::logic_error& e) {
          return std::string("caught ") + e.what();
        }
        return std::string("nothing");
      },
      opts);
  catcher.switch_to();
  CHECK(catcher.throw_to(std::logic_error("thrown in")).get<std::string>() == "caught thrown in");

  // Many suspended at once, then unwound by dropping them.
  std::vector<std::string> log;
  {
    std::vector<greenlet> many;
    for (int i = 0; i < 64; ++i) {
      many.emplace_back(
          [&log, i] {
            struct on_exit {
              std::vector<std::string>* log;
              int i;
              ~on_exit() { log->push_back(std::to_string(i)); }
            } guard{&log, i};
            current().parent().switch_to(i);
          },
          opts);
      CHECK(many.back().switch_to().get<int>() == i);
    }
  }
  CHECK(log.size() == 64);
  CHECK(counter.switch_to().get<int>() == 12);
}

TEST_CASE("the page below a guarded stack is inaccessible, the stack's lowest byte is not",
          "[stack]") {
  const auto allocator = GENERATE(greenlets::pooled_stacks(), greenlets::guarded_stacks());
  auto stacks = std::make_shared<counting_stacks>(allocator);
  greenlet g([] { current().parent().switch_to(); }, with(stacks));
  g.switch_to();
  REQUIRE(stacks->given().size() == 1);
  const greenlets::stack_context sc = stacks->given()[0];
  const char* lowest = static_cast<const char*>(sc.sp) - sc.size;
  CHECK(readable(lowest));
  CHECK(readable(static_cast<const char*>(sc.sp) - 1));
  CHECK_FALSE(readable(lowest - 1));
  CHECK_FALSE(readable(lowest - page_size()));
  g.switch_to();
  CHECK(g.dead());
}

namespace {

// What the overflowing child knows about its greenlet's stack: the address of a local
// at the top of `run`, and the stack size.
volatile std::uintptr_t overflow_top_local = 0;
constexpr std::size_t overflow_stack_size = 16 * 1024;

// In the child: a fault just below the greenlet's stack (its guard page) is re-raised
// with the default action, so the child dies of the signal; a fault anywhere else (the
// overflow ran on into other memory) exits with status 4 instead.
void on_overflow_fault(int, ::siginfo_t* info, void*) {
  const std::uintptr_t fault = reinterpret_cast<std::uintptr_t>(info->si_addr);
  const std::uintptr_t top = overflow_top_local;
  const std::size_t below = top - fault;
  if (fault < top && below > overflow_stack_size / 2 &&
      below <= overflow_stack_size + page_size()) {
    struct ::sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGSEGV, &dfl, nullptr);
    ::sigaction(SIGBUS, &dfl, nullptr);
    return;  // the faulting instruction runs again and the default action kills us
  }
  ::_exit(4);
}

}  // namespace

TEST_CASE("overflowing the default stack faults on its guard page instead of running on",
          "[stack]") {
  std::fflush(nullptr);
  const ::pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child: no core file; a signal handler on its own stack checks where the
    // fault is; a 16 KiB default-allocated stack that recursion far deeper than it
    // fits (256-byte frames) must run off. The library's own overflow report (an
    // abort, tested in test_overflow.cpp) is installed when a thread first starts a
    // greenlet: start one first so that our handler replaces it, not the reverse.
    greenlet([] {}).switch_to();
    const ::rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    static char alternate[64 * 1024];
    ::stack_t ss{};
    ss.ss_sp = alternate;
    ss.ss_size = sizeof alternate;
    ::sigaltstack(&ss, nullptr);
    struct ::sigaction sa {};
    sa.sa_sigaction = on_overflow_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    ::sigaction(SIGSEGV, &sa, nullptr);  // replaces Catch2's handler in the child
    ::sigaction(SIGBUS, &sa, nullptr);
    greenlets::options opts;
    opts.stack_size = overflow_stack_size;
    greenlet g(
        [] {
          overflow_top_local = stack_position();
          return recurse(0, 4000);
        },
        opts);
    const int depth = g.switch_to().get<int>();
    ::_exit(depth == 4000 ? 0 : 3);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("exited: " << WIFEXITED(status)
                  << ", exit status: " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1)
                  << " (4: the fault was not just below the stack)");
  REQUIRE(WIFSIGNALED(status));
  const int sig = WTERMSIG(status);
  CHECK((sig == SIGSEGV || sig == SIGBUS));
}

TEST_CASE("a custom stack_resource is used when given", "[stack]") {
  auto stacks = std::make_shared<counting_stacks>();
  std::uintptr_t local = 0;
  {
    greenlet g(
        [&local] {
          local = stack_position();
          current().parent().switch_to();
        },
        with(stacks, 64 * 1024));
    CHECK(stacks->allocated == 0);  // nothing until it starts
    std::weak_ptr<counting_stacks> watch = stacks;
    auto raw = stacks.get();
    stacks.reset();  // the greenlet keeps its resource alive
    g.switch_to();
    CHECK(raw->allocated == 1);
    REQUIRE(raw->given().size() == 1);
    CHECK(raw->requested()[0] == 64 * 1024);
    CHECK(within(local, raw->given()[0]));
    CHECK(raw->deallocated == 0);
    stacks = watch.lock();
    REQUIRE(stacks != nullptr);
  }
  CHECK(stacks->deallocated == 1);

  SECTION("allocate and deallocate run on the owning thread") {
    std::thread::id owner;
    std::thread th([&] {
      owner = std::this_thread::get_id();
      greenlet g([] { return 1; }, with(stacks));
      g.switch_to();
    });
    th.join();
    const auto threads = stacks->threads();
    REQUIRE(threads.size() == 4);
    CHECK(threads[2] == owner);
    CHECK(threads[3] == owner);
  }
}

namespace {

class failing_stacks final : public greenlets::stack_resource {
 public:
  greenlets::stack_context allocate(std::size_t) override { throw std::bad_alloc(); }
  void deallocate(greenlets::stack_context) noexcept override { ++deallocated; }
  int deallocated = 0;
};

}  // namespace

TEST_CASE("a stack that cannot be allocated fails the switch; the greenlet never starts",
          "[stack]") {
  auto stacks = std::make_shared<failing_stacks>();
  bool ran = false;
  greenlet g([&ran] { ran = true; }, with(stacks));
  CHECK_THROWS_AS(g.switch_to(), std::bad_alloc);
  CHECK_FALSE(ran);
  CHECK_FALSE(g.started());
  CHECK_FALSE(g.active());
  CHECK(stacks->deallocated == 0);
  CHECK(current().is_main());
  greenlet fine([] { return 2; });
  CHECK(fine.switch_to().get<int>() == 2);
}
