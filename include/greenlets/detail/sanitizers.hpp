// Announcing stack switches to AddressSanitizer, ThreadSanitizer and valgrind.
//
// Debian's Boost.Context is the fcontext build with none of these hooks, so the
// library makes the announcements itself around every jump:
//
// - AddressSanitizer: `__sanitizer_start_switch_fiber` just before each jump (with
//   nullptr for the fake stack when the greenlet leaving has finished for good) and
//   `__sanitizer_finish_switch_fiber` first thing after it lands. A main greenlet's
//   stack bounds are learnt from the first landing that leaves it. Stacks are
//   unpoisoned when handed out and when given back, so a stack reused from the pool
//   carries no poison from the frames of a greenlet that finished on it (its bottom
//   frames never return).
// - ThreadSanitizer: a fiber per started greenlet, `__tsan_switch_to_fiber` just
//   before each jump; a main greenlet is the thread's own fiber.
// - valgrind memcheck: each stack is registered while a greenlet owns it, so memcheck
//   tells a switch from a huge stack frame.
//
// The sanitizer hooks are compiled in only when the compiler instruments for the
// tool (__SANITIZE_ADDRESS__ / __SANITIZE_THREAD__, or clang's __has_feature), so
// without one `tool_state` is empty and every hook is an empty inline function.
// The valgrind requests are compiled in whenever <valgrind/valgrind.h> is available
// (define GREENLETS_VALGRIND=0 to leave them out, =1 to insist): they run only when
// a stack is handed out or given back, never on a switch, and only under valgrind
// (asked once, see on_valgrind()). All translation units of a program must agree on
// these macros (tool_state's layout).
#ifndef GREENLETS_DETAIL_SANITIZERS_HPP
#define GREENLETS_DETAIL_SANITIZERS_HPP

#include <cstddef>

#include <boost/context/stack_context.hpp>

#include "greenlets/detail/config.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define GREENLETS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GREENLETS_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define GREENLETS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GREENLETS_TSAN 1
#endif
#endif

#ifndef GREENLETS_VALGRIND
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#define GREENLETS_VALGRIND 1
#endif
#endif
#endif

#if defined(GREENLETS_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(GREENLETS_TSAN)
#include <sanitizer/tsan_interface.h>
#endif
#if defined(GREENLETS_VALGRIND) && GREENLETS_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define GREENLETS_VALGRIND_ACTIVE 1
#endif

namespace greenlets::detail {

// Sets up stack overflow reporting for this thread (overflow.hpp); called for each
// stack handed out until it has (once the thread has mapped a guarded stack).
void install_overflow_reporting() noexcept;
inline thread_local bool tls_overflow_reporting = false;

#if defined(GREENLETS_VALGRIND_ACTIVE)
// Asked once: a client request costs a few dozen instructions even natively, and a
// stack is registered and deregistered for every greenlet that starts.
inline bool on_valgrind() noexcept {
  static const bool running = RUNNING_ON_VALGRIND != 0;
  return running;
}
#endif

// Per-greenlet bookkeeping of the tools (empty when none is active).
struct tool_state {
#if defined(GREENLETS_ASAN)
  const void* bottom = nullptr;  // lowest address of the stack; null: not yet known (main)
  std::size_t size = 0;
  void* fake_stack = nullptr;  // ASan's fake stack while switched out
#endif
#if defined(GREENLETS_TSAN)
  void* fiber = nullptr;  // null for a main greenlet until it first switches out
#endif
#if defined(GREENLETS_VALGRIND_ACTIVE)
  unsigned stack_id = 0;
#endif
};

// A stack was allocated for a greenlet, which will start on it.
inline void tool_stack_allocated(tool_state& self,
                                 const boost::context::stack_context& sc) noexcept {
  if (GREENLETS_UNLIKELY(!tls_overflow_reporting)) install_overflow_reporting();
  (void)self;
  (void)sc;
#if defined(GREENLETS_ASAN) || defined(GREENLETS_VALGRIND_ACTIVE)
  char* const bottom = static_cast<char*>(sc.sp) - sc.size;
#endif
#if defined(GREENLETS_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(bottom, sc.size);
  self.bottom = bottom;
  self.size = sc.size;
  self.fake_stack = nullptr;
#endif
#if defined(GREENLETS_TSAN)
  self.fiber = __tsan_create_fiber(0);
#endif
#if defined(GREENLETS_VALGRIND_ACTIVE)
  if (on_valgrind()) {
    // A reused stack keeps memcheck's view from its last life (the area below its old
    // frames marked inaccessible); make_fcontext writes its first frame there.
    VALGRIND_MAKE_MEM_UNDEFINED(bottom, sc.size);
    self.stack_id = VALGRIND_STACK_REGISTER(bottom, static_cast<char*>(sc.sp));
  }
#endif
}

// The greenlet's stack is about to be given back; the greenlet is not running
// (its last jump away has landed).
inline void tool_stack_freed(tool_state& self, const boost::context::stack_context& sc) noexcept {
  (void)self;
  (void)sc;
#if defined(GREENLETS_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(sc.sp) - sc.size, sc.size);
  self.bottom = nullptr;
  self.size = 0;
#endif
#if defined(GREENLETS_TSAN)
  __tsan_destroy_fiber(self.fiber);  // never a main greenlet's: those keep their stack
  self.fiber = nullptr;
#endif
#if defined(GREENLETS_VALGRIND_ACTIVE)
  if (on_valgrind()) {
    VALGRIND_STACK_DEREGISTER(self.stack_id);
    self.stack_id = 0;
  }
#endif
}

// Called just before jumping from `from` to `to`; `from_finished` when `from` will
// never run again (its stack is freed by whoever lands).
//
// Always inlined: under ThreadSanitizer, a function of its own would record its
// entry on one fiber's shadow call stack and its exit on the other's, and main's
// would run dry one entry per kill (seen with GCC 12 at -O1).
GREENLETS_ALWAYS_INLINE void tool_before_switch(tool_state& from, tool_state& to,
                                                bool from_finished) noexcept {
  (void)from;
  (void)to;
  (void)from_finished;
#if defined(GREENLETS_TSAN)
  if (from.fiber == nullptr) from.fiber = __tsan_get_current_fiber();  // a main greenlet
  __tsan_switch_to_fiber(to.fiber, 0);
#endif
#if defined(GREENLETS_ASAN)
  __sanitizer_start_switch_fiber(from_finished ? nullptr : &from.fake_stack, to.bottom, to.size);
#endif
}

// Called first thing after a jump from `from` lands in `self`.
GREENLETS_ALWAYS_INLINE void tool_after_switch(tool_state& self, tool_state& from) noexcept {
  (void)self;
  (void)from;
#if defined(GREENLETS_ASAN)
  const void* from_bottom = nullptr;
  std::size_t from_size = 0;
  __sanitizer_finish_switch_fiber(self.fake_stack, &from_bottom, &from_size);
  self.fake_stack = nullptr;
  // A main greenlet's stack is the thread's: ASan tells us its bounds as we leave it.
  if (from.bottom == nullptr) {
    from.bottom = from_bottom;
    from.size = from_size;
  }
#endif
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_SANITIZERS_HPP
