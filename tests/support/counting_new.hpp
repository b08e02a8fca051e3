// Counting the heap allocations a piece of code makes, for tests that prove a path
// allocates nothing. tests/support/counting_new.cpp replaces the global allocation
// functions (every form) for the whole test binary.
#ifndef GREENLETS_TESTS_SUPPORT_COUNTING_NEW_HPP
#define GREENLETS_TESTS_SUPPORT_COUNTING_NEW_HPP

#include <cstddef>

namespace test_support {

// While true on a thread, operator new calls made on that thread are counted.
extern thread_local bool counting;
extern thread_local std::size_t allocations;

// Counts the heap allocations made on this thread while `f` runs.
template <class F>
std::size_t count_allocations(F&& f) {
  allocations = 0;
  counting = true;
  f();
  counting = false;
  return allocations;
}

// True if our operator new is the one in use (not so under valgrind, which replaces
// the allocation functions with its own: allocation checks then only say so).
bool counting_works();

}  // namespace test_support

#endif  // GREENLETS_TESTS_SUPPORT_COUNTING_NEW_HPP
