// Stack overflow in a greenlet ("Stacks" in docs/semantics.md): the guard page turns it into a
// report naming the greenlet and its stack size, then an abort; faults that are not
// in our guard pages go to whoever handled SIGSEGV before us.
//
// Each case runs in a forked child (the parent is single-threaded at that point:
// the other tests join their threads) and checks the child's stderr and how it died.
// The child first drops the handlers Catch2 installs for the test case, so that the
// signals act as in a program of their own.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

#include "support/fork_child.hpp"
#include "support/options.hpp"
#include "support/overflow.hpp"

#if defined(GREENLETS_VALGRIND_ACTIVE)
#include <valgrind/valgrind.h>
#endif

using greenlets::greenlet;

namespace {

using test_support::child_result;
using test_support::recurse;
using test_support::run_child;
using test_support::with_stack;

// Writes the line the overflow report must print for `g` (sized `kib`) to stderr,
// prefixed with "expect: ", then overflows `g`'s stack.
void overflow_in(greenlet& g, std::size_t kib) {
  char line[128];
  // The report names the greenlet by its internal address, which nothing public shows.
  const int n = std::snprintf(line, sizeof line,
                              "expect: greenlets: stack overflow in greenlet %p (stack %zu KiB)\n",
                              static_cast<void*>(greenlets::detail::greenlet_access::get(g)), kib);
  if (n > 0) (void)!::write(STDERR_FILENO, line, static_cast<std::size_t>(n));
  g.switch_to();
}

// The report line the child announced before overflowing.
std::string expected_report(const std::string& err) {
  const std::string tag = "expect: ";
  const auto at = err.find(tag);
  if (at == std::string::npos) return "<no expectation announced>";
  const auto end = err.find('\n', at);
  return err.substr(at + tag.size(), end - at - tag.size());
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("overflowing a greenlet's stack reports the greenlet and its stack size, then aborts",
          "[stack][overflow]") {
  child_result r = run_child([] {
    // Not public: this thread's first stack, which installs the report, may predate the fork.
    greenlets::detail::report_overflows_on_this_thread();
    greenlet g([] { recurse(0); }, with_stack(64 * 1024));
    overflow_in(g, 64);
  });
  CHECK(r.aborted());
  const std::string expected = expected_report(r.err);
  CHECK(expected.rfind("greenlets: stack overflow in greenlet 0x", 0) == 0);
  CHECK(expected.find("(stack 64 KiB)") != std::string::npos);
  // The expectation line itself contains the report once; the handler adds it again.
  CHECK(count_of(r.err, expected) == 2);
}

TEST_CASE("the overflow report names a named greenlet", "[stack][overflow][debug]") {
  child_result r = run_child([] {
    // Not public: this thread's first stack, which installs the report, may predate the fork.
    greenlets::detail::report_overflows_on_this_thread();
    greenlets::options o = with_stack(64 * 1024);
    o.name = "deep recursion";
    greenlet g([] { recurse(0); }, o);
    g.switch_to();
  });
  CHECK(r.aborted());
  CHECK_THAT(r.err, Catch::Contains("greenlets: stack overflow in greenlet 0x") &&
                        Catch::Contains(" \"deep recursion\" (stack 64 KiB)"));
}

TEST_CASE("an overflow on a stack reused from the pool is reported with that stack's size",
          "[stack][overflow]") {
  child_result r = run_child([] {
    // Not public: this thread's first stack, which installs the report, may predate the fork.
    greenlets::detail::report_overflows_on_this_thread();
    for (int i = 0; i < 3; ++i) {  // leaves stacks of this size in the pool
      greenlet warm([] { return recurse(INT_MAX); }, with_stack(96 * 1024));
      warm.switch_to();
    }
    greenlet g([] { recurse(0); }, with_stack(96 * 1024));
    overflow_in(g, 96);
  });
  CHECK(r.aborted());
  const std::string expected = expected_report(r.err);
  CHECK(expected.find("(stack 96 KiB)") != std::string::npos);
  CHECK(count_of(r.err, expected) == 2);
}

TEST_CASE("overflowing a freshly mapped guarded stack is reported the same way",
          "[stack][overflow]") {
  child_result r = run_child([] {
    // Not public: this thread's first stack, which installs the report, may predate the fork.
    greenlets::detail::report_overflows_on_this_thread();
    greenlet g([] { recurse(0); }, with_stack(32 * 1024, greenlets::guarded_stacks()));
    overflow_in(g, 32);
  });
  CHECK(r.aborted());
  const std::string expected = expected_report(r.err);
  CHECK(expected.find("(stack 32 KiB)") != std::string::npos);
  CHECK(count_of(r.err, expected) == 2);
}

TEST_CASE("an overflow in a greenlet of another thread is reported on that thread's signal stack",
          "[stack][overflow][threads]") {
  child_result r = run_child([] {
    std::thread t([] {
      greenlet g([] { recurse(0); }, with_stack(48 * 1024));
      overflow_in(g, 48);
    });
    t.join();
  });
  CHECK(r.aborted());
  const std::string expected = expected_report(r.err);
  CHECK(expected.find("(stack 48 KiB)") != std::string::npos);
  CHECK(count_of(r.err, expected) == 2);
}

namespace {

void previous_handler(int, siginfo_t*, void*) {
  const char msg[] = "previous handler ran\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(42);
}

// A page no one may touch, outside any stack of ours. Memcheck would count the
// deliberate fault on it as an error of the child (and change its exit status), so
// the child tells it not to.
char* forbidden_page() {
#if defined(GREENLETS_VALGRIND_ACTIVE)
  VALGRIND_DISABLE_ERROR_REPORTING;
#endif
  void* p = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

// Compared with the library's own handler, which has no public name.
bool ours_installed() {
  struct sigaction current {};
  ::sigaction(SIGSEGV, nullptr, &current);
  return (current.sa_flags & SA_SIGINFO) != 0 &&
         current.sa_sigaction == &greenlets::detail::overflow_signal_handler;
}

}  // namespace

TEST_CASE("a fault outside our guard pages goes to the SIGSEGV handler installed before ours",
          "[stack][overflow]") {
  child_result r = run_child([] {
    struct sigaction theirs {};
    theirs.sa_sigaction = &previous_handler;
    theirs.sa_flags = SA_SIGINFO;
    sigemptyset(&theirs.sa_mask);
    ::sigaction(SIGSEGV, &theirs, nullptr);
    // Not public: starting a greenlet installs ours only on a thread's first stack.
    greenlets::detail::install_overflow_handler();  // ours goes on top, chaining to theirs
    if (!ours_installed()) ::_exit(3);
    char* page = forbidden_page();
    if (page == nullptr) ::_exit(4);
    greenlet g([page] { *static_cast<volatile char*>(page) = 1; });  // faults inside a greenlet
    g.switch_to();
  });
  CHECK(r.exited_with(42));
  CHECK(r.err.find("previous handler ran") != std::string::npos);
  CHECK(r.err.find("stack overflow") == std::string::npos);
}

TEST_CASE("a fault outside our guard pages with no handler before ours kills with SIGSEGV",
          "[stack][overflow]") {
  child_result r = run_child([] {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGSEGV, &dfl, nullptr);
    // Not public: starting a greenlet installs ours only on a thread's first stack.
    greenlets::detail::install_overflow_handler();
    if (!ours_installed()) ::_exit(3);
    char* page = forbidden_page();
    if (page == nullptr) ::_exit(4);
    greenlet g([page] { *static_cast<volatile char*>(page) = 1; });
    g.switch_to();
  });
  CHECK(r.killed_by(SIGSEGV));
  CHECK(r.err.find("stack overflow") == std::string::npos);
}

TEST_CASE("starting a greenlet installs the overflow handler and a signal stack for the thread",
          "[stack][overflow][threads]") {
  std::thread t([] {
    stack_t before{};
    ::sigaltstack(nullptr, &before);
    greenlet g([] { return 1; });
    CHECK(g.switch_to().get<int>() == 1);
    stack_t after{};
    ::sigaltstack(nullptr, &after);
    // Ours, or the one the thread already had (ASan gives every thread one).
    CHECK((after.ss_flags & SS_DISABLE) == 0);
    if ((before.ss_flags & SS_DISABLE) == 0) CHECK(after.ss_sp == before.ss_sp);
    CHECK(after.ss_size >= 16 * 1024);
    CHECK(ours_installed());
  });
  t.join();
}

TEST_CASE(
    "The overflow handler is installed when a thread first starts a greenlet on a guarded "
    "stack, not before",
    "[stack][overflow][threads]") {
  // A new thread in the child: the test thread may have started greenlets already.
  child_result r = run_child([] {
    std::thread t([] {
      if (ours_installed()) ::_exit(10);  // the child starts from the default action
      greenlet unstarted([] {});
      if (ours_installed()) ::_exit(11);  // a greenlet gets its stack when it starts
      greenlet on_malloc([] { return 1; }, with_stack(64 * 1024, greenlets::malloc_stacks()));
      if (on_malloc.switch_to().get<int>() != 1) ::_exit(12);
      if (ours_installed()) ::_exit(13);  // no guard page, nothing to report
      greenlet guarded([] { return 2; });
      if (guarded.switch_to().get<int>() != 2) ::_exit(14);
      if (!ours_installed()) ::_exit(15);
    });
    t.join();
  });
  CHECK(r.exited_with(0));
}

TEST_CASE("guarded_stacks() installs the overflow handler on first use too", "[stack][overflow]") {
  child_result r = run_child([] {
    std::thread t([] {
      if (ours_installed()) ::_exit(10);
      greenlet g([] { return 1; }, with_stack(32 * 1024, greenlets::guarded_stacks()));
      if (g.switch_to().get<int>() != 1) ::_exit(11);
      if (!ours_installed()) ::_exit(12);
    });
    t.join();
  });
  CHECK(r.exited_with(0));
}
