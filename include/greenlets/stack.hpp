// Stack allocators: where a greenlet's stack comes from.
//
//   greenlets::options opts;
//   opts.stack_size = 64 * 1024;                        // per greenlet
//   opts.allocator = greenlets::guarded_stacks();       // fresh mmap each time, no pool
//   greenlets::greenlet g(run, opts);
//
// The default (`pooled_stacks()`) gives every stack a guard page below it, so an
// overflow faults instead of corrupting memory, and reuses stacks from a per-thread
// pool so spawning makes no system call in the steady state.
#ifndef GREENLETS_STACK_HPP
#define GREENLETS_STACK_HPP

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <boost/context/stack_context.hpp>

#include "greenlets/error.hpp"

namespace greenlets {

/// A stack: `sp` is its top (stacks grow down), `size` its usable bytes below `sp`.
///
/// Boost.Context's own `stack_context`, so Boost allocators adapt easily.
using stack_context = boost::context::stack_context;

/// The stack size a greenlet gets when its options do not say: 256 KiB.
///
/// Untouched pages cost no memory, so a generous size costs address space only.
inline constexpr std::size_t default_stack_size = 256 * 1024;

/// Where stacks come from: implement this to plug in your own stacks.
///
/// `allocate` and `deallocate` are called on the thread that owns the greenlet.
/// Python: none (greenlet copies stack slices to the heap instead).
class stack_resource {
 public:
  virtual ~stack_resource() = default;
  /// Returns a stack of at least `size` usable bytes; throws `std::bad_alloc` or `error`.
  virtual stack_context allocate(std::size_t size) = 0;
  /// Takes back a stack that `allocate` returned.
  virtual void deallocate(stack_context stack) noexcept = 0;
};

/// A shared handle to a `stack_resource`; an empty one means the default (`pooled_stacks()`).
class stack_allocator {
 public:
  /// The default allocator: guarded stacks from this thread's pool.
  stack_allocator() noexcept = default;
  /// Uses `resource` for every stack it hands out.
  explicit stack_allocator(std::shared_ptr<stack_resource> resource) noexcept
      : resource_(std::move(resource)) {}
  /// The resource, or null for the default.
  stack_resource* resource() const noexcept { return resource_.get(); }

 private:
  std::shared_ptr<stack_resource> resource_;
};

namespace detail {

inline std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

inline std::size_t round_to_pages(std::size_t size) noexcept {
  constexpr std::size_t minimum = 16 * 1024;
  if (size < minimum) size = minimum;
  const std::size_t page = page_size();
  return (size + page - 1) / page * page;
}

#ifndef MADV_GUARD_INSTALL
#define GREENLETS_MADV_GUARD_INSTALL 102  // Linux 6.13; older headers lack it
#else
#define GREENLETS_MADV_GUARD_INSTALL MADV_GUARD_INSTALL
#endif

// 0: not yet known; 1: madvise(MADV_GUARD_INSTALL) works; 2: fall back to mprotect.
inline std::atomic<int> guard_mode{0};

inline bool guard_pages_use_madvise() noexcept { return guard_mode.load() == 1; }

inline std::size_t read_max_map_count() noexcept {
  std::size_t value = 0;
  if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    unsigned long v = 0;
    if (std::fscanf(f, "%lu", &v) == 1) value = v;
    std::fclose(f);
  }
  return value;
}

// Installs a guard page at `base`: without a new mapping where the kernel can.
inline void install_guard(void* base, std::size_t guard) {
  int mode = guard_mode.load(std::memory_order_relaxed);
  if (mode != 2) {
    if (::madvise(base, guard, GREENLETS_MADV_GUARD_INSTALL) == 0) {
      if (mode == 0) guard_mode.store(1, std::memory_order_relaxed);
      return;
    }
    if (mode == 0 && (errno == EINVAL || errno == ENOSYS)) {
      guard_mode.store(2, std::memory_order_relaxed);
    } else if (mode == 1) {
      throw std::bad_alloc();
    }
  }
  if (::mprotect(base, guard, PROT_NONE) != 0) {
    const int err = errno;
    if (err == ENOMEM) {
      throw error("greenlets: stack allocation: mprotect of a guard page failed with ENOMEM: "
                  "each guarded stack takes two memory mappings, and this process reached "
                  "vm.max_map_count (" + std::to_string(read_max_map_count()) +
                  "); raise it with `sysctl vm.max_map_count=...`, use smaller numbers of "
                  "greenlets, or use greenlets::malloc_stacks() (no guard page)");
    }
    throw error(std::string("greenlets: stack allocation: mprotect of a guard page failed: ") +
                std::strerror(err));
  }
}

// A stack of `size` usable bytes with one guard page below it, in its own mapping.
inline stack_context map_guarded_stack(std::size_t size) {
  const std::size_t guard = page_size();
  void* base = ::mmap(nullptr, size + guard, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) throw std::bad_alloc();
  try {
    install_guard(base, guard);
  } catch (...) {
    ::munmap(base, size + guard);
    throw;
  }
  stack_context sc;
  sc.size = size;
  sc.sp = static_cast<char*>(base) + guard + size;
  return sc;
}

inline void unmap_guarded_stack(stack_context sc) noexcept {
  const std::size_t guard = page_size();
  ::munmap(static_cast<char*>(sc.sp) - sc.size - guard, sc.size + guard);
}

// Guarded stacks kept for reuse by one thread, bucketed by size.
class stack_pool {
 public:
  static constexpr std::size_t max_cached_per_size = 256;

  stack_pool() = default;
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;
  ~stack_pool() {
    trim(0);
    alive() = false;
  }

  // This thread's pool, or null once the thread has destroyed it.
  static stack_pool* local() noexcept {
    if (!alive()) return nullptr;
    thread_local stack_pool pool;
    return &pool;
  }

  stack_context allocate(std::size_t size) {
    for (bucket& b : buckets_) {
      if (b.size == size && !b.free.empty()) {
        stack_context sc = b.free.back();
        b.free.pop_back();
        return sc;
      }
    }
    return map_guarded_stack(size);
  }

  void deallocate(stack_context sc) noexcept {
    for (bucket& b : buckets_) {
      if (b.size == sc.size) {
        if (b.free.size() < max_cached_per_size && push(b, sc)) return;
        unmap_guarded_stack(sc);
        return;
      }
    }
    try {
      buckets_.push_back(bucket{sc.size, {}});
    } catch (...) {
      unmap_guarded_stack(sc);
      return;
    }
    if (!push(buckets_.back(), sc)) unmap_guarded_stack(sc);
  }

  // Unmaps cached stacks until at most `keep` per size remain.
  void trim(std::size_t keep) noexcept {
    for (bucket& b : buckets_) {
      while (b.free.size() > keep) {
        unmap_guarded_stack(b.free.back());
        b.free.pop_back();
      }
    }
  }

  std::size_t cached() const noexcept {
    std::size_t n = 0;
    for (const bucket& b : buckets_) n += b.free.size();
    return n;
  }

 private:
  struct bucket {
    std::size_t size;
    std::vector<stack_context> free;
  };

  static bool push(bucket& b, stack_context sc) noexcept {
    try {
      b.free.push_back(sc);
      return true;
    } catch (...) {
      return false;
    }
  }

  static bool& alive() noexcept {
    thread_local bool flag = true;
    return flag;
  }

  std::vector<bucket> buckets_;
};

class guarded_stack_resource final : public stack_resource {
 public:
  stack_context allocate(std::size_t size) override { return map_guarded_stack(size); }
  void deallocate(stack_context sc) noexcept override { unmap_guarded_stack(sc); }
};

class pooled_stack_resource final : public stack_resource {
 public:
  stack_context allocate(std::size_t size) override {
    if (stack_pool* pool = stack_pool::local()) return pool->allocate(size);
    return map_guarded_stack(size);
  }
  void deallocate(stack_context sc) noexcept override {
    if (stack_pool* pool = stack_pool::local()) {
      pool->deallocate(sc);
    } else {
      unmap_guarded_stack(sc);
    }
  }
};

class malloc_stack_resource final : public stack_resource {
 public:
  stack_context allocate(std::size_t size) override {
    void* base = std::malloc(size);
    if (base == nullptr) throw std::bad_alloc();
    stack_context sc;
    sc.size = size;
    sc.sp = static_cast<char*>(base) + size;
    return sc;
  }
  void deallocate(stack_context sc) noexcept override {
    std::free(static_cast<char*>(sc.sp) - sc.size);
  }
};

}  // namespace detail

/// The default: stacks with a guard page, reused from a per-thread pool.
///
/// Spawning makes no system call once the pool is warm; a thread keeps at most 256
/// free stacks of each size and unmaps the rest.
inline stack_allocator pooled_stacks() {
  static const auto resource = std::make_shared<detail::pooled_stack_resource>();
  return stack_allocator(resource);
}

/// Stacks with a guard page, mapped for each greenlet and unmapped when it ends.
inline stack_allocator guarded_stacks() {
  static const auto resource = std::make_shared<detail::guarded_stack_resource>();
  return stack_allocator(resource);
}

/// Stacks from `malloc`, with no guard page: an overflow corrupts memory silently.
///
/// Not limited by `vm.max_map_count`; use only where you know the stack depth.
inline stack_allocator malloc_stacks() {
  static const auto resource = std::make_shared<detail::malloc_stack_resource>();
  return stack_allocator(resource);
}

/// Unmaps the free stacks this thread's pool keeps, down to `keep` per size.
inline void trim_stack_pool(std::size_t keep = 0) noexcept {
  if (detail::stack_pool* pool = detail::stack_pool::local()) pool->trim(keep);
}

/// How many free stacks this thread's pool keeps now.
inline std::size_t stack_pool_size() noexcept {
  detail::stack_pool* pool = detail::stack_pool::local();
  return pool ? pool->cached() : 0;
}

}  // namespace greenlets

#endif  // GREENLETS_STACK_HPP
