// GREENLETS_NO_OVERFLOW_HANDLER: this file is a test binary of its own, compiled with
// the macro defined (tests/CMakeLists.txt), since every translation unit of a program
// must agree on it. Greenlets on guarded stacks then leave SIGSEGV and the signal
// stacks alone, and an overflow dies of a plain SIGSEGV with no report.
#ifndef GREENLETS_NO_OVERFLOW_HANDLER
#error "build this file with GREENLETS_NO_OVERFLOW_HANDLER defined"
#endif

#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

#include "support/fork_child.hpp"
#include "support/options.hpp"
#include "support/overflow.hpp"

using greenlets::greenlet;
using test_support::recurse;
using test_support::with_stack;

namespace {

struct signal_setup {
  struct sigaction segv {};
  stack_t alt{};
};

signal_setup current_setup() {
  signal_setup s;
  ::sigaction(SIGSEGV, nullptr, &s.segv);
  ::sigaltstack(nullptr, &s.alt);
  return s;
}

bool same_handler(const struct sigaction& a, const struct sigaction& b) {
  if ((a.sa_flags & SA_SIGINFO) != (b.sa_flags & SA_SIGINFO)) return false;
  if ((a.sa_flags & SA_SIGINFO) != 0) return a.sa_sigaction == b.sa_sigaction;
  return a.sa_handler == b.sa_handler;
}

}  // namespace

TEST_CASE("with GREENLETS_NO_OVERFLOW_HANDLER, guarded stacks install no handler or signal stack",
          "[stack][overflow][threads]") {
  // A new thread: its first stacks are made here, where the report would be set up.
  std::thread t([] {
    const signal_setup before = current_setup();
    greenlet pooled([] { return 1; });
    CHECK(pooled.switch_to().get<int>() == 1);
    greenlet guarded([] { return 2; }, with_stack(32 * 1024, greenlets::guarded_stacks()));
    CHECK(guarded.switch_to().get<int>() == 2);
    CHECK(greenlets::detail::tls_made_guarded_stack);  // the guarded path was taken
    const signal_setup after = current_setup();
    CHECK(same_handler(after.segv, before.segv));
    CHECK((after.alt.ss_flags & SS_DISABLE) == (before.alt.ss_flags & SS_DISABLE));
    CHECK(after.alt.ss_sp == before.alt.ss_sp);
  });
  t.join();
}

TEST_CASE("with GREENLETS_NO_OVERFLOW_HANDLER, an overflow dies of a plain SIGSEGV",
          "[stack][overflow]") {
  // In a forked child with the default action for SIGSEGV (not Catch2's handler).
  test_support::child_result r = test_support::run_child([] {
    greenlet g([] { recurse(0); }, with_stack(64 * 1024));
    g.switch_to();
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.killed_by(SIGSEGV));
  CHECK(r.err.find("stack overflow in greenlet") == std::string::npos);
}
