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
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
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

inline std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

inline std::size_t round_to_pages(std::size_t size) noexcept {
  constexpr std::size_t minimum = std::size_t{16} * 1024;
  if (size < minimum) size = minimum;
  const std::size_t page = page_size();
  return (size + page - 1) / page * page;
}

#ifndef MADV_GUARD_INSTALL
#define GREENLETS_MADV_GUARD_INSTALL 102  // Linux 6.13; older headers lack it
#else
#define GREENLETS_MADV_GUARD_INSTALL MADV_GUARD_INSTALL
#endif

// How guard pages are made: learnt from the first stack, or forced by tests.
enum guard_kind : int {
  guard_unknown = 0,
  guard_madvise = 1,   // madvise(MADV_GUARD_INSTALL): a page-table marker, no new mapping
  guard_mprotect = 2,  // mprotect(PROT_NONE): splits the mapping, two per stack
};
inline std::atomic<int> guard_mode{guard_unknown};

// Whether process_madvise(PIDFD_SELF) takes MADV_GUARD_INSTALL (Linux 6.13+), so a whole
// chunk of stacks gets its guard pages in one system call: 0 unknown, 1 yes, 2 no.
inline std::atomic<int> guard_batch_mode{0};

inline bool guard_pages_use_madvise() noexcept { return guard_mode.load() == guard_madvise; }

inline std::size_t read_max_map_count() noexcept {
  std::size_t value = 0;
  if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    unsigned long v = 0;
    if (std::fscanf(f, "%lu", &v) == 1) value = v;
    std::fclose(f);
  }
  return value;
}

// How many memory mappings this process has now (lines of /proc/self/maps).
inline std::size_t count_mappings() noexcept {
  std::size_t lines = 0;
  if (std::FILE* f = std::fopen("/proc/self/maps", "r")) {
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) {
      for (std::size_t i = 0; i < n; ++i) lines += buffer[i] == '\n';
    }
    std::fclose(f);
  }
  return lines;
}

[[noreturn]] inline void throw_map_count_reached(const char* call, std::size_t mappings,
                                                 std::size_t limit) {
  throw error(std::string("greenlets: stack allocation: ") + call +
              " failed with ENOMEM: this process has " + std::to_string(mappings) +
              " memory mappings and reached the kernel's limit vm.max_map_count (" +
              std::to_string(limit) +
              "). Without madvise(MADV_GUARD_INSTALL) (Linux 6.13) each guarded stack takes two "
              "mappings; raise the limit with `sysctl -w vm.max_map_count=...`, hold fewer "
              "greenlets, or use greenlets::malloc_stacks() (no guard pages)");
}

// mmap failed: out of address space or memory (std::bad_alloc), or at vm.max_map_count.
[[noreturn]] inline void throw_mmap_failure(int err) {
  if (err == ENOMEM) {
    const std::size_t limit = read_max_map_count();
    const std::size_t mappings = count_mappings();
    if (limit != 0 && mappings + 2 >= limit) throw_map_count_reached("mmap", mappings, limit);
  }
  throw std::bad_alloc();
}

// mprotect fails with ENOMEM on a mapped range only when the split needs a mapping
// over vm.max_map_count (or the kernel is out of memory for one).
[[noreturn]] inline void throw_mprotect_failure(int err) {
  if (err == ENOMEM)
    throw_map_count_reached("mprotect of a guard page", count_mappings(), read_max_map_count());
  throw error(std::string("greenlets: stack allocation: mprotect of a guard page failed: ") +
              std::strerror(err));
}

// One guard page at the bottom of each of `n` slots of `slot` bytes from `base`, all in
// one mapping: page-table markers where the kernel has them (one call for the lot with
// process_madvise), else mprotect. Throws with the mapping left for the caller to unmap.
inline void install_guards(char* base, std::size_t slot, std::size_t n) {
  constexpr std::size_t max_batch = 64;
  const std::size_t guard = page_size();
  if (guard_mode.load(std::memory_order_relaxed) != guard_mprotect) {
#ifdef SYS_process_madvise
    if (n > 1 && n <= max_batch && guard_batch_mode.load(std::memory_order_relaxed) != 2) {
      constexpr int pidfd_self = -10000;  // PIDFD_SELF, Linux 6.15
      ::iovec iov[max_batch];
      for (std::size_t i = 0; i < n; ++i) {
        iov[i].iov_base = base + i * slot;
        iov[i].iov_len = guard;
      }
      const long done =
          ::syscall(SYS_process_madvise, pidfd_self, iov, n, GREENLETS_MADV_GUARD_INSTALL, 0U);
      if (done == static_cast<long>(n * guard)) {
        guard_batch_mode.store(1, std::memory_order_relaxed);
        guard_mode.store(guard_madvise, std::memory_order_relaxed);
        return;
      }
      if (done < 0 && guard_batch_mode.load(std::memory_order_relaxed) == 0) {
        guard_batch_mode.store(2, std::memory_order_relaxed);
      }
      // Otherwise partly done: installing a marker again is harmless.
    }
#endif
    std::size_t i = 0;
    while (i < n && ::madvise(base + i * slot, guard, GREENLETS_MADV_GUARD_INSTALL) == 0) ++i;
    if (i == n) {
      guard_mode.store(guard_madvise, std::memory_order_relaxed);
      return;
    }
    const int err = errno;
    if (err == ENOMEM || err == EAGAIN) throw std::bad_alloc();  // no memory for page tables
    // EINVAL: an old kernel, or a mapping it will not mark (mlockall'd memory):
    // mprotect instead, for this chunk (and for good if the very first one failed).
    if (i == 0 && guard_mode.load(std::memory_order_relaxed) == guard_unknown) {
      guard_mode.store(guard_mprotect, std::memory_order_relaxed);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (::mprotect(base + i * slot, guard, PROT_NONE) != 0) throw_mprotect_failure(errno);
  }
}

// `bytes` of fresh stack memory, or throws.
inline char* map_stack_memory(std::size_t bytes) {
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) throw_mmap_failure(errno);
  return static_cast<char*>(base);
}

// A stack of `size` usable bytes with one guard page below it, in its own mapping.
inline stack_context map_guarded_stack(std::size_t size) {
  size = round_to_pages(size);
  const std::size_t guard = page_size();
  char* base = map_stack_memory(size + guard);
  try {
    install_guards(base, size + guard, 1);
  } catch (...) {
    ::munmap(base, size + guard);
    throw;
  }
  stack_context sc;
  sc.size = size;
  sc.sp = base + guard + size;
  return sc;
}

inline void unmap_guarded_stack(stack_context sc) noexcept {
  const std::size_t guard = page_size();
  ::munmap(static_cast<char*>(sc.sp) - sc.size - guard, sc.size + guard);
}

// Guarded stacks of one thread, mapped in chunks and kept for reuse.
//
// A chunk is one mapping of up to 64 slots (a guard page, then a stack): one mmap and,
// where the kernel can, one process_madvise for all its guard pages. A stack given back
// goes to a short per-size cache ("warm": ready, its touched pages resident). Past that
// it becomes a free slot of its chunk; a chunk whose slots are all free is unmapped,
// and free slots of chunks still in use are emptied with MADV_DONTNEED (in batches), so
// memory returns to the system while no mapping is ever split. Nothing is written into
// the stacks, and nothing allocated while greenlets are dropped outlives the drop (it
// would pin the top of the heap over their freed records): the lists of chunks are
// intrusive, the warm cache is reserved whole up front.
class stack_pool {
 public:
  static constexpr std::size_t max_cached_per_size = 256;  // warm stacks kept per size
  static constexpr std::size_t max_dirty = 256;  // free slots left resident before a flush
  static constexpr std::size_t max_slots_per_chunk = 64;
  static constexpr std::size_t max_chunk_bytes = std::size_t{32} << 20;

  stack_pool() = default;
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;
  ~stack_pool() {
    trim(0);
    // Chunks still in use hold stacks of greenlets leaked on purpose: they stay mapped.
    for (auto& entry : chunks_) delete entry.second;
    alive() = false;
  }

  // This thread's pool, or null once the thread has destroyed it.
  static stack_pool* local() noexcept {
    if (!alive()) return nullptr;
    thread_local stack_pool pool;
    return &pool;
  }

  stack_context allocate(std::size_t size) {
    size = round_to_pages(size);
    bucket& b = bucket_for(size);
    if (!b.warm.empty()) {
      stack_context sc = b.warm.back();
      b.warm.pop_back();
      return sc;
    }
    if (b.partial.head == nullptr) add_chunk(b);
    chunk* c = b.partial.head;
    // Prefer a slot whose pages are still resident.
    const std::uint64_t from = c->dirty != 0 ? c->dirty : c->free;
    const std::uint64_t bit = from & (~from + 1);  // the lowest
    if (c->dirty & bit) {
      c->dirty &= ~bit;
      --dirty_;
      if (c->dirty == 0) dirty_list_.remove(c);
    }
    c->free &= ~bit;
    if (c->free == 0) b.partial.remove(c);
    ++c->used;
    return c->stack(static_cast<std::size_t>(__builtin_ctzll(bit)));
  }

  void deallocate(stack_context sc) noexcept {
    for (bucket& b : buckets_) {
      if (b.size == sc.size) {
        if (b.warm.size() < max_cached_per_size && push(b.warm, sc)) return;
        break;
      }
    }
    release(sc);
  }

  // Releases cached stacks until at most `keep` per size remain ready, and empties the
  // free slots of chunks still in use.
  void trim(std::size_t keep) noexcept {
    for (bucket& b : buckets_) {
      while (b.warm.size() > keep) {
        stack_context sc = b.warm.back();
        b.warm.pop_back();
        release(sc);
      }
    }
    flush_dirty();
  }

  // Stacks kept ready (warm) across sizes: what trim_stack_pool releases.
  std::size_t cached() const noexcept {
    std::size_t n = 0;
    for (const bucket& b : buckets_) n += b.warm.size();
    return n;
  }

  // Chunks mapped now (for tests).
  std::size_t chunk_count() const noexcept { return chunks_.size(); }

 private:
  struct chunk;

  // An intrusive list of chunks, through one pair of links in each.
  template <chunk* chunk::*Prev, chunk* chunk::*Next>
  struct chunk_list {
    chunk* head = nullptr;
    void push(chunk* c) noexcept {
      c->*Prev = nullptr;
      c->*Next = head;
      if (head != nullptr) head->*Prev = c;
      head = c;
    }
    void remove(chunk* c) noexcept {
      if (c->*Prev != nullptr) {
        c->*Prev->*Next = c->*Next;
      } else {
        head = c->*Next;
      }
      if (c->*Next != nullptr) c->*Next->*Prev = c->*Prev;
      c->*Prev = c->*Next = nullptr;
    }
  };

  struct chunk {
    char* base = nullptr;
    std::size_t slot = 0;  // guard + stack bytes
    std::size_t slots = 0;
    std::size_t used = 0;     // slots handed out or cached warm
    std::uint64_t free = 0;   // bit i: slot i is free in the chunk
    std::uint64_t dirty = 0;  // bit i: free, with pages possibly still resident
    chunk* partial_prev = nullptr;
    chunk* partial_next = nullptr;
    chunk* dirty_prev = nullptr;
    chunk* dirty_next = nullptr;

    stack_context stack(std::size_t i) const noexcept {
      stack_context sc;
      sc.size = slot - page_size();
      sc.sp = base + (i + 1) * slot;
      return sc;
    }
    std::size_t bytes() const noexcept { return slot * slots; }
  };

  using partial_list = chunk_list<&chunk::partial_prev, &chunk::partial_next>;
  using dirty_list = chunk_list<&chunk::dirty_prev, &chunk::dirty_next>;

  struct bucket {
    std::size_t size = 0;
    std::vector<stack_context> warm;
    partial_list partial;        // chunks of this size with free slots
    std::size_t next_slots = 4;  // chunks grow 4, 8, ... 64 slots
  };

  static bool push(std::vector<stack_context>& v, stack_context sc) noexcept {
    try {
      v.push_back(sc);
      return true;
    } catch (...) {
      return false;
    }
  }

  bucket& bucket_for(std::size_t size) {
    for (bucket& b : buckets_) {
      if (b.size == size) return b;
    }
    bucket b;
    b.size = size;
    b.warm.reserve(max_cached_per_size);
    buckets_.push_back(std::move(b));
    return buckets_.back();
  }

  bucket* find_bucket(std::size_t size) noexcept {
    for (bucket& b : buckets_) {
      if (b.size == size) return &b;
    }
    return nullptr;
  }

  void add_chunk(bucket& b) {
    const std::size_t slot = b.size + page_size();
    std::size_t n = b.next_slots;
    if (n * slot > max_chunk_bytes) n = max_chunk_bytes / slot;
    if (n == 0) n = 1;
    auto record = std::make_unique<chunk>();
    record->base = map_stack_memory(n * slot);
    record->slot = slot;
    record->slots = n;
    try {
      install_guards(record->base, slot, n);
      chunks_.emplace(reinterpret_cast<std::uintptr_t>(record->base), record.get());
    } catch (...) {
      ::munmap(record->base, n * slot);
      throw;
    }
    chunk* c = record.release();
    c->free = n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
    b.partial.push(c);
    if (b.next_slots < max_slots_per_chunk) b.next_slots *= 2;
  }

  chunk* find_chunk(const stack_context& sc) noexcept {
    const auto low = reinterpret_cast<std::uintptr_t>(sc.sp) - sc.size;
    auto it = chunks_.upper_bound(low);
    if (it == chunks_.begin()) return nullptr;
    --it;
    chunk* c = it->second;
    if (low >= it->first + c->bytes() || c->slot != sc.size + page_size()) return nullptr;
    return c;
  }

  // Gives a stack back to its chunk: unmaps the chunk when it was the last one in use.
  void release(stack_context sc) noexcept {
    chunk* c = find_chunk(sc);
    bucket* b = c != nullptr ? find_bucket(sc.size) : nullptr;
    if (b == nullptr) {  // not one of ours: a single guarded mapping
      unmap_guarded_stack(sc);
      return;
    }
    const auto offset = static_cast<std::size_t>(static_cast<char*>(sc.sp) - c->base);
    const std::uint64_t bit = std::uint64_t{1} << (offset / c->slot - 1);
    if (--c->used == 0) {
      if (c->free != 0) b->partial.remove(c);
      if (c->dirty != 0) {
        dirty_ -= static_cast<std::size_t>(__builtin_popcountll(c->dirty));
        dirty_list_.remove(c);
      }
      ::munmap(c->base, c->bytes());
      chunks_.erase(reinterpret_cast<std::uintptr_t>(c->base));
      delete c;
      return;
    }
    if (c->free == 0) b->partial.push(c);
    c->free |= bit;
    if (c->dirty == 0) dirty_list_.push(c);
    c->dirty |= bit;
    if (++dirty_ > max_dirty) flush_dirty();
  }

  // Empties the pages of every dirty free slot, a run of neighbouring slots at a time.
  void flush_dirty() noexcept {
    const std::size_t guard = page_size();
    while (chunk* c = dirty_list_.head) {
      std::uint64_t d = c->dirty;
      while (d != 0) {
        const auto first = static_cast<std::size_t>(__builtin_ctzll(d));
        std::size_t last = first;
        while (last + 1 < 64 && ((d >> (last + 1)) & 1U) != 0) ++last;
        // From the first slot's stack (above its guard page) to the end of the last
        // slot: guard markers in between survive MADV_DONTNEED.
        char* from = c->base + first * c->slot + guard;
        char* to = c->base + (last + 1) * c->slot;
        ::madvise(from, static_cast<std::size_t>(to - from), MADV_DONTNEED);
        for (std::size_t i = first; i <= last; ++i) d &= ~(std::uint64_t{1} << i);
      }
      c->dirty = 0;
      dirty_list_.remove(c);
    }
    dirty_ = 0;
  }

  static bool& alive() noexcept {
    thread_local bool flag = true;
    return flag;
  }

  std::vector<bucket> buckets_;
  std::map<std::uintptr_t, chunk*> chunks_;  // by base address
  dirty_list dirty_list_;                    // chunks with dirty free slots
  std::size_t dirty_ = 0;
};

class guarded_stack_resource final : public stack_resource {
 public:
  stack_context allocate(std::size_t size) override { return map_guarded_stack(size); }
  void deallocate(stack_context sc) noexcept override { unmap_guarded_stack(sc); }
};

// A stack from this thread's pool (a fresh one once the thread has destroyed its pool).
inline stack_context pool_allocate(std::size_t size) {
  if (stack_pool* pool = stack_pool::local()) return pool->allocate(size);
  return map_guarded_stack(size);
}

inline void pool_deallocate(stack_context sc) noexcept {
  if (stack_pool* pool = stack_pool::local()) {
    pool->deallocate(sc);
  } else {
    unmap_guarded_stack(sc);
  }
}

class pooled_stack_resource final : public stack_resource {
 public:
  stack_context allocate(std::size_t size) override { return pool_allocate(size); }
  void deallocate(stack_context sc) noexcept override { pool_deallocate(sc); }
};

// The one pooled resource that pooled_stacks() hands out. A greenlet given it uses
// the default path, which reaches the pool without a virtual call.
inline const std::shared_ptr<stack_resource>& pooled_resource() {
  static const std::shared_ptr<stack_resource> resource = std::make_shared<pooled_stack_resource>();
  return resource;
}

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
inline stack_allocator pooled_stacks() { return stack_allocator(detail::pooled_resource()); }

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
