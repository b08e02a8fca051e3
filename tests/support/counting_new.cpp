// The test binary's one replacement of the global allocation functions: they count
// while test_support::counting is set on the calling thread (see counting_new.hpp).
#include "counting_new.hpp"

#include <cstddef>
#include <cstdlib>
#include <new>

// ---------------------------------------------------------------------------
// Counting operator new. This is the test binary's one replacement of the global
// allocation functions (every form, so that no pointer crosses between ours and the
// runtime's, which ASan would report): they count while `counting` is set on the
// calling thread and otherwise just forward to malloc/free. Tests use
// `test_support::count_allocations` (counting_new.hpp). Valgrind replaces these functions with its
// own, so there `counting_works()` is false and the allocation checks only say so.

namespace test_support {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;

bool counting_works() {
  // A direct call: a new-expression could be elided (clang does at -O1).
  return count_allocations([] { ::operator delete(::operator new(1)); }) == 1;
}

void* allocate(std::size_t size, std::size_t align) noexcept {
  if (counting) ++allocations;
  if (size == 0) size = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(size);
  return std::aligned_alloc(align, (size + align - 1) / align * align);
}
}  // namespace test_support

// None of these is inlined: GCC 12 would see free() paired with `new` and warn (a false
// positive), and valgrind, which replaces them by symbol, would miss inlined copies.
[[gnu::noinline]] void release_allocation(void* p) noexcept { std::free(p); }

[[gnu::noinline]] void* operator new(std::size_t size) {
  if (void* p = test_support::allocate(size, 0)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size) { return ::operator new(size); }
[[gnu::noinline]] void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return test_support::allocate(size, 0);
}
[[gnu::noinline]] void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return test_support::allocate(size, 0);
}
[[gnu::noinline]] void* operator new(std::size_t size, std::align_val_t align) {
  if (void* p = test_support::allocate(size, static_cast<std::size_t>(align))) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size, std::align_val_t align) {
  return ::operator new(size, align);
}
[[gnu::noinline]] void* operator new(std::size_t size, std::align_val_t align,
                                     const std::nothrow_t&) noexcept {
  return test_support::allocate(size, static_cast<std::size_t>(align));
}
[[gnu::noinline]] void* operator new[](std::size_t size, std::align_val_t align,
                                       const std::nothrow_t&) noexcept {
  return test_support::allocate(size, static_cast<std::size_t>(align));
}
[[gnu::noinline]] void operator delete(void* p) noexcept { release_allocation(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { release_allocation(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { release_allocation(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { release_allocation(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept {
  release_allocation(p);
}
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept {
  release_allocation(p);
}
[[gnu::noinline]] void operator delete(void* p, std::align_val_t) noexcept {
  release_allocation(p);
}
[[gnu::noinline]] void operator delete[](void* p, std::align_val_t) noexcept {
  release_allocation(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  release_allocation(p);
}
[[gnu::noinline]] void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  release_allocation(p);
}
[[gnu::noinline]] void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  release_allocation(p);
}
[[gnu::noinline]] void operator delete[](void* p, std::align_val_t,
                                         const std::nothrow_t&) noexcept {
  release_allocation(p);
}
