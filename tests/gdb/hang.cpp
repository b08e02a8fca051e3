// The program the gdb tests look into: when it calls `stopped_here()`, where the
// tests put a breakpoint, three plain greenlets are suspended three calls deep in
// functions with distinctive names, and hub tasks wait on a timer, a pipe, an event
// and a queue. It prints run_info() just before, for comparison.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <greenlets/greenlets.hpp>

using namespace std::chrono_literals;
using greenlets::greenlet;

// noinline, a use of the result after the call, and constants of their own (or
// identical code folding merges alpha's, beta's and gamma's): each frame stays a frame
// of its own, and its own function, in any build.
#define KEEP __attribute__((noinline))

namespace {

volatile int sink = 0;

KEEP int alpha_innermost_frame(int n) {
  greenlets::current().parent().switch_to();
  return n + sink + 1;
}
KEEP int alpha_middle_frame(int n) { return alpha_innermost_frame(n + 1) + sink; }
KEEP int alpha_outer_frame(int n) { return alpha_middle_frame(n + 1) + sink; }

KEEP int beta_innermost_frame(int n) {
  greenlets::current().parent().switch_to();
  return n + sink + 2;
}
KEEP int beta_middle_frame(int n) { return beta_innermost_frame(n + 2) + sink; }
KEEP int beta_outer_frame(int n) { return beta_middle_frame(n + 2) + sink; }

KEEP int gamma_innermost_frame(int n) {
  greenlets::current().parent().switch_to();
  return n + sink + 3;
}
KEEP int gamma_middle_frame(int n) { return gamma_innermost_frame(n + 3) + sink; }
KEEP int gamma_outer_frame(int n) { return gamma_middle_frame(n + 3) + sink; }

KEEP void sleeping_task_frame() { greenlets::sleep(1h); }
KEEP void reading_task_frame(int fd) { greenlets::wait_readable(fd); }
KEEP void event_task_frame(greenlets::event& e) { e.wait(); }
KEEP int queue_task_frame(greenlets::queue<int>& q) { return q.get(); }

greenlet named(const char* name, int (*f)(int)) {
  greenlets::options o;
  o.name = name;
  return greenlet([f] { return f(0); }, o);
}

}  // namespace

// The breakpoint: everything above is suspended when this runs.
extern "C" KEEP void stopped_here() { sink = sink + 1; }

int main() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return 1;
  greenlet a = named("alpha", alpha_outer_frame);
  greenlet b = named("beta", beta_outer_frame);
  greenlet c = named("gamma", gamma_outer_frame);
  a.switch_to();
  b.switch_to();
  c.switch_to();

  greenlets::event ev;
  greenlets::queue<int> q;
  auto t1 = greenlets::spawn_named("sleeper", sleeping_task_frame);
  auto t2 = greenlets::spawn_named("reader", reading_task_frame, fds[0]);
  auto t3 = greenlets::spawn_named("event-waiter", [&] { event_task_frame(ev); });
  auto t4 = greenlets::spawn_named("getter", [&] { return queue_task_frame(q); });
  greenlets::sleep(0s);  // each task starts and blocks

  std::fputs(greenlets::run_info().c_str(), stdout);
  std::fflush(stdout);
  stopped_here();

  // Let everything finish, so that a run without the debugger ends cleanly.
  ev.set();
  q.put(1);
  if (::write(fds[1], "x", 1) != 1) return 1;
  t1.kill();
  t2.join();
  t3.join();
  t4.join();
  a.switch_to();
  b.switch_to();
  c.switch_to();
  ::close(fds[0]);
  ::close(fds[1]);
  return sink > 0 ? 0 : 1;
}
