// A recursion that overflows any stack it runs on, for the stack-overflow tests.
//
//   greenlet g([] { test_support::recurse(0); }, test_support::with_stack(64 * 1024));
#ifndef GREENLETS_TESTS_SUPPORT_OVERFLOW_HPP
#define GREENLETS_TESTS_SUPPORT_OVERFLOW_HPP

#include <climits>

namespace test_support {

// Never reached: a volatile bound keeps the compiler from proving the recursion endless.
inline volatile int depth_limit = INT_MAX;

// Uses 256 bytes of stack a call until `depth_limit` (never) or the guard page.
[[gnu::noinline]] inline int recurse(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (depth >= depth_limit) return frame[0];
  return recurse(depth + 1) + frame[0];
}

}  // namespace test_support

#endif  // GREENLETS_TESTS_SUPPORT_OVERFLOW_HPP
