// Whether the test runs under valgrind, for the few tests whose bounds or set-up valgrind
// changes (its simulated CPU is slower; it keeps fds of its own). False when the headers
// are missing: the test then cannot be under valgrind's requests either.
#ifndef GREENLETS_TESTS_SUPPORT_VALGRIND_HPP
#define GREENLETS_TESTS_SUPPORT_VALGRIND_HPP

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GREENLETS_TEST_HAVE_VALGRIND 1
#endif
#endif

namespace test_support {

inline bool under_valgrind() {
#ifdef GREENLETS_TEST_HAVE_VALGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}

}  // namespace test_support

#endif  // GREENLETS_TESTS_SUPPORT_VALGRIND_HPP
