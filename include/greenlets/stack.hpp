// Stack allocators: where a greenlet's stack comes from.
//
//   greenlets::options opts;
//   opts.stack_size = 64 * 1024;                        // per greenlet
//   opts.allocator = greenlets::guarded_stacks();       // fresh mmap each time, no pool
//   greenlets::greenlet g(run, opts);
//
// The default (`pooled_stacks()`) gives every stack a guard page below it, so an
// overflow faults instead of corrupting memory, and reuses stacks from a per-thread
// pool so spawning makes no system call in the steady state. The guard pages and the
// pool are in detail/guard_pages.hpp and detail/stack_pool.hpp, the overflow report
// in detail/overflow.hpp.
#ifndef GREENLETS_STACK_HPP
#define GREENLETS_STACK_HPP

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>

#include <boost/context/stack_context.hpp>

#include "greenlets/detail/block_cache.hpp"
#include "greenlets/detail/guard_pages.hpp"
#include "greenlets/detail/stack_pool.hpp"

namespace greenlets {

/// A stack: `sp` is its top (stacks grow down), `size` its usable bytes below `sp`.
///
/// Boost.Context's own `stack_context`, so Boost allocators adapt easily.
using stack_context = boost::context::stack_context;

/// The stack size a greenlet gets when its options do not say: 256 KiB.
///
/// Untouched pages cost no memory, so a generous size costs address space only.
inline constexpr std::size_t default_stack_size = std::size_t{256} * 1024;

/// Where stacks come from: implement this to plug in your own stacks.
///
/// `allocate` and `deallocate` are called on the thread that owns the greenlet.
/// Python: none (greenlet copies stack slices to the heap instead).
class stack_resource {
 public:
  /// Destroys the resource; stacks it handed out must have been given back.
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

// A stack_resource that forwards to two functions: the built-in ones have no state.
template <stack_context (*Allocate)(std::size_t), void (*Deallocate)(stack_context) noexcept>
class function_stack_resource final : public stack_resource {
 public:
  stack_context allocate(std::size_t size) override { return Allocate(size); }
  void deallocate(stack_context sc) noexcept override { Deallocate(sc); }
};

inline stack_context malloc_stack(std::size_t size) {
  void* base = std::malloc(size);
  if (base == nullptr) throw std::bad_alloc();
  stack_context sc;
  sc.size = size;
  sc.sp = static_cast<char*>(base) + size;
  return sc;
}

inline void free_malloc_stack(stack_context sc) noexcept {
  std::free(static_cast<char*>(sc.sp) - sc.size);
}

// The one pooled resource that pooled_stacks() hands out. A greenlet given it uses
// the default path, which reaches the pool without a virtual call.
inline const std::shared_ptr<stack_resource>& pooled_resource() {
  static const std::shared_ptr<stack_resource> resource =
      std::make_shared<function_stack_resource<&pool_allocate, &pool_deallocate>>();
  return resource;
}

}  // namespace detail

/// The default: stacks with a guard page, reused from a per-thread pool.
///
/// Spawning makes no system call once the pool is warm; a thread keeps at most 256
/// free stacks of each size ready and gives the memory of the rest back, keeping
/// their address space and guard pages (up to its recent peak in use) for the next
/// burst. An overflow is reported by a SIGSEGV handler installed when a thread first
/// starts a greenlet on a guarded stack (unless `GREENLETS_NO_OVERFLOW_HANDLER` is
/// defined).
inline stack_allocator pooled_stacks() { return stack_allocator(detail::pooled_resource()); }

/// Stacks with a guard page, mapped for each greenlet and unmapped when it ends.
///
/// Overflows are reported as with `pooled_stacks()`.
inline stack_allocator guarded_stacks() {
  static const auto resource = std::make_shared<
      detail::function_stack_resource<&detail::map_guarded_stack, &detail::unmap_guarded_stack>>();
  return stack_allocator(resource);
}

/// Stacks from `malloc`, with no guard page: an overflow corrupts memory silently.
///
/// Not limited by `vm.max_map_count`; use only where you know the stack depth.
inline stack_allocator malloc_stacks() {
  static const auto resource = std::make_shared<
      detail::function_stack_resource<&detail::malloc_stack, &detail::free_malloc_stack>>();
  return stack_allocator(resource);
}

/// Unmaps the free stacks this thread's pool keeps, down to `keep` per size ready, and
/// every chunk of stacks none of which is in use; empties the free slots of the others
/// and gives back the spare greenlet records (and hub task states) the thread keeps.
///
/// Python: no counterpart (CPython's allocator keeps its arenas).
inline void trim_stack_pool(std::size_t keep = 0) noexcept {
  if (detail::stack_pool* pool = detail::stack_pool::local()) pool->trim(keep);
  detail::tls_blocks.free_all();
}

/// How many free stacks this thread's pool keeps now.
inline std::size_t stack_pool_size() noexcept {
  detail::stack_pool* pool = detail::stack_pool::local();
  return pool ? pool->cached() : 0;
}

}  // namespace greenlets

#endif  // GREENLETS_STACK_HPP
