// Spare small blocks per thread, reused before the general allocator is asked.
//
// Part of greenlet.hpp, which includes it; include that instead.
#ifndef GREENLETS_DETAIL_BLOCK_CACHE_HPP
#define GREENLETS_DETAIL_BLOCK_CACHE_HPP

#include <cstddef>
#include <memory>
#include <new>

#include "greenlets/detail/config.hpp"
#include "greenlets/detail/sanitizers.hpp"  // GREENLETS_ASAN

namespace greenlets::detail {

// Spare small blocks of this thread: greenlet records and the hub's task states. A
// burst of ten thousand tasks made and dropped again would otherwise go through the
// general allocator's slow paths each time (its per-size caches hold a few blocks;
// the rest are merged into large free chunks and split again), some 700 instructions
// per task, a third of what making, running and joining one costs. Blocks come in
// four sizes (128, 256, 512 and 1,024 bytes) and the cache holds at most
// GREENLETS_BLOCK_CACHE_BYTES per thread; past that a freed block goes back to the
// allocator. Used only while the thread's greenlet state lives (it opens the cache;
// ~thread_state closes and empties it, and trim_stack_pool() empties it), so none is left
// behind by a thread that only frees; left out under AddressSanitizer, which should see
// every block freed.
struct block_cache {
  static constexpr std::size_t classes = 4;
  static constexpr std::size_t largest = std::size_t{128} << (classes - 1);
  static constexpr std::size_t max_bytes = GREENLETS_BLOCK_CACHE_BYTES;
  void* heads[classes] = {};
  std::size_t bytes = 0;  // held in all classes
  bool open = false;      // while the thread's greenlet state lives

  static constexpr std::size_t class_of(std::size_t size) noexcept {
    return size <= 128 ? 0 : size <= 256 ? 1 : size <= 512 ? 2 : 3;
  }
  static constexpr std::size_t class_size(std::size_t c) noexcept { return std::size_t{128} << c; }

  void free_all() noexcept {
    for (void*& head : heads) {
      while (head != nullptr) {
        void* next = *static_cast<void**>(head);
        ::operator delete(head);
        head = next;
      }
    }
    bytes = 0;
  }
};
inline thread_local block_cache tls_blocks;

// A block of at least `size` bytes, aligned as operator new aligns.
inline void* allocate_block(std::size_t size) {
#if !defined(GREENLETS_ASAN)
  if (size <= block_cache::largest) {
    const std::size_t c = block_cache::class_of(size);
    block_cache& cache = tls_blocks;
    if (void* p = cache.heads[c]; p != nullptr && cache.open) {
      cache.heads[c] = *static_cast<void**>(p);
      cache.bytes -= block_cache::class_size(c);
      return p;
    }
    return ::operator new(block_cache::class_size(c));  // any block of a class fits it
  }
#endif
  return ::operator new(size);
}

// Frees a block from allocate_block(size), on any thread.
inline void free_block(void* p, std::size_t size) noexcept {
#if !defined(GREENLETS_ASAN)
  if (size <= block_cache::largest) {
    const std::size_t c = block_cache::class_of(size);
    block_cache& cache = tls_blocks;
    if (cache.open && cache.bytes + block_cache::class_size(c) <= block_cache::max_bytes) {
      *static_cast<void**>(p) = cache.heads[c];
      cache.heads[c] = p;
      cache.bytes += block_cache::class_size(c);
      return;
    }
  }
#endif
  (void)size;
  ::operator delete(p);
}

// A std allocator over allocate_block, for std::allocate_shared.
template <class T>
struct block_allocator {
  using value_type = T;
  block_allocator() noexcept = default;
  template <class U>
  block_allocator(const block_allocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) {
    if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      return std::allocator<T>().allocate(n);
    } else {
      return static_cast<T*>(allocate_block(n * sizeof(T)));
    }
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      std::allocator<T>().deallocate(p, n);
    } else {
      free_block(p, n * sizeof(T));
    }
  }
  friend bool operator==(const block_allocator&, const block_allocator&) noexcept { return true; }
  friend bool operator!=(const block_allocator&, const block_allocator&) noexcept { return false; }
};

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_BLOCK_CACHE_HPP
