// Reporting a greenlet's stack overflow.
//
// Overflowing a guarded stack faults in the guard page below it. The fault cannot be
// handled on the stack that overflowed, so each thread that runs greenlets on guarded
// stacks gets an alternate signal stack (unless it already has one, e.g. from ASan),
// and a process-wide SIGSEGV handler runs there: a fault in the guard page of the
// running greenlet prints
//
//   greenlets: stack overflow in greenlet 0x5581e2a0 (stack 256 KiB)
//
// and aborts; any other fault goes to the handler that was installed before ours (or
// the default action, which kills the process as if we were not there).
//
// Nothing is installed at start-up or by including a header. A thread sets up the
// report when it starts a greenlet after it has mapped a guarded stack (the default
// pooled_stacks() and guarded_stacks(); malloc_stacks() and custom resources alone
// install nothing). At that point it installs our handler again if something replaced
// it (Catch2, for one, restores the handlers it found after each test case), chaining
// to the one it replaces; should that one chain back to ours, the loop ends in the
// default action.
//
// Define GREENLETS_NO_OVERFLOW_HANDLER (in every translation unit, before any
// greenlets header) to install neither the handler nor signal stacks: an overflow
// then dies of a plain SIGSEGV, or goes to your own handler.
//
// Included at the end of greenlet.hpp (after greenlet_members.hpp): the handler reads
// the running greenlet.
#ifndef GREENLETS_DETAIL_OVERFLOW_HPP
#define GREENLETS_DETAIL_OVERFLOW_HPP

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <mutex>

#include "greenlets/detail/guard_pages.hpp"
#include "greenlets/greenlet.hpp"

namespace greenlets::detail {

struct overflow_globals {
  struct sigaction previous {};  // the handler ours replaced
  std::size_t page = 4096;
  std::mutex mutex;  // installing, per thread
};

inline overflow_globals& overflow_state() noexcept {
  static overflow_globals* state = new overflow_globals();  // used by signal handlers until exit
  return *state;
}

// Appends the decimal or hexadecimal digits of `v` (async-signal-safe formatting).
inline char* overflow_format(char* out, unsigned long v, unsigned base) noexcept {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  while (n > 0) *out++ = digits[--n];
  return out;
}

inline char* overflow_append(char* out, const char* s) noexcept {
  while (*s != '\0') *out++ = *s++;
  return out;
}

[[noreturn]] inline void overflow_report(const greenlet_impl* g) noexcept {
  char line[224];
  char* p = overflow_append(line, "greenlets: stack overflow in greenlet 0x");
  p = overflow_format(p, reinterpret_cast<unsigned long>(g), 16);
  if (g->name) {  // at most 64 bytes of it: the line is on the signal stack
    p = overflow_append(p, " \"");
    for (const char* s = g->name.get(); *s != '\0' && s < g->name.get() + 64; ++s) *p++ = *s;
    *p++ = '"';
  }
  p = overflow_append(p, " (stack ");
  p = overflow_format(p, static_cast<unsigned long>(g->stack.size / 1024), 10);
  p = overflow_append(p, " KiB)\n");
  const char* q = line;
  while (q < p) {
    const ssize_t n = ::write(STDERR_FILENO, q, static_cast<std::size_t>(p - q));
    if (n <= 0) break;
    q += n;
  }
  std::abort();
}

// The address `addr` lies in the guard page below the running greenlet's stack.
inline const greenlet_impl* overflowed_greenlet(const void* addr) noexcept {
  const greenlet_impl* g = tls_switch.current;
  if (g == nullptr) return nullptr;
  if (g->is_main || g->stack.sp == nullptr) return nullptr;
  const char* bottom = static_cast<const char*>(g->stack.sp) - g->stack.size;
  const char* a = static_cast<const char*>(addr);
  const std::size_t page = overflow_state().page;
  if (a < bottom && a >= bottom - page) return g;
  return nullptr;
}

inline thread_local bool tls_in_overflow_handler = false;

// Leaves `sig` to the default action: the faulting instruction runs again and kills
// the process once we return; a signal that was sent is sent again.
inline void overflow_default_action(int sig, const siginfo_t* info) noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  if (info->si_code <= 0) ::raise(sig);
}

inline void overflow_signal_handler(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  if (const greenlet_impl* g = overflowed_greenlet(info->si_addr)) overflow_report(g);
  if (tls_in_overflow_handler) {
    // A handler we chained to chains back to us: end the loop.
    overflow_default_action(sig, info);
    errno = saved_errno;
    return;
  }
  tls_in_overflow_handler = true;
  // Not ours: behave as the handler we replaced.
  const struct sigaction& prev = overflow_state().previous;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN &&
             prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
  } else {
    overflow_default_action(sig, info);  // ignoring a fault would only loop
  }
  tls_in_overflow_handler = false;
  errno = saved_errno;
}

// This thread's alternate signal stack, if we had to make one.
struct overflow_alt_stack {
  void* base = nullptr;
  std::size_t size = 0;

  overflow_alt_stack() noexcept {
    stack_t current{};
    if (::sigaltstack(nullptr, &current) != 0 || (current.ss_flags & SS_DISABLE) == 0) return;
    std::size_t want = 64 * 1024;
    const long minimum = ::sysconf(_SC_SIGSTKSZ);
    if (minimum > 0 && static_cast<std::size_t>(minimum) * 4 > want) {
      want = static_cast<std::size_t>(minimum) * 4;
    }
    void* p = ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;  // overflows then die with a bare SIGSEGV
    stack_t ss{};
    ss.ss_sp = p;
    ss.ss_size = want;
    ss.ss_flags = 0;
    if (::sigaltstack(&ss, nullptr) != 0) {
      ::munmap(p, want);
      return;
    }
    base = p;
    size = want;
  }
  ~overflow_alt_stack() {
    if (base == nullptr) return;
    stack_t current{};
    if (::sigaltstack(nullptr, &current) == 0 && current.ss_sp == base) {
      stack_t off{};
      off.ss_flags = SS_DISABLE;
      ::sigaltstack(&off, nullptr);
    }
    ::munmap(base, size);
  }
  overflow_alt_stack(const overflow_alt_stack&) = delete;
  overflow_alt_stack& operator=(const overflow_alt_stack&) = delete;
};

// Installs our SIGSEGV handler unless it is the one installed, chaining to the one
// it replaces.
inline void install_overflow_handler() noexcept {
  overflow_globals& state = overflow_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  struct sigaction current {};
  if (::sigaction(SIGSEGV, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 && current.sa_sigaction == &overflow_signal_handler) {
    return;
  }
  state.page = page_size();
  struct sigaction ours {};
  ours.sa_sigaction = &overflow_signal_handler;
  ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&ours.sa_mask);
  state.previous = current;
  ::sigaction(SIGSEGV, &ours, nullptr);
}

// Gives this thread an alternate signal stack and installs our SIGSEGV handler if it
// is not installed.
inline void report_overflows_on_this_thread() noexcept {
  thread_local overflow_alt_stack alt_stack;
  install_overflow_handler();
}

// Called as each greenlet starts (sanitizers.hpp) until it sets tls_overflow_reporting:
// sets up the report once this thread has mapped a guarded stack.
GREENLETS_COLD GREENLETS_NOINLINE inline void install_overflow_reporting() noexcept {
#ifdef GREENLETS_NO_OVERFLOW_HANDLER
  tls_overflow_reporting = true;  // never asked again
#else
  if (!tls_made_guarded_stack) return;
  tls_overflow_reporting = true;
  report_overflows_on_this_thread();
#endif
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_OVERFLOW_HPP
