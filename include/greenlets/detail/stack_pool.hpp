// The per-thread pool of guarded stacks behind pooled_stacks(), the default allocator.
#ifndef GREENLETS_DETAIL_STACK_POOL_HPP
#define GREENLETS_DETAIL_STACK_POOL_HPP

#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "greenlets/detail/config.hpp"
#include "greenlets/detail/guard_pages.hpp"

namespace greenlets::detail {

// The last stack given back by pool_deallocate, kept aside for the next pool_allocate of
// its size: a greenlet finishing and the next one starting (the common churn) skip the
// pool's lookup both ways. Zero-initialised, so reading it needs no initialisation check.
// Counted with the pool's cached stacks, and given back to the pool by trim() and when
// the pool goes.
inline thread_local stack_context tls_spare_stack{};

// Guarded stacks of one thread, mapped in chunks and kept for reuse.
//
// A chunk is one mapping of up to 64 slots (a guard page, then a stack): one mmap and,
// where the kernel can, one process_madvise for all its guard pages. A stack given back
// goes to a short per-size cache ("warm": ready, its touched pages resident). Past that
// it becomes a free slot of its chunk, and free slots are given back with MADV_FREE (in
// batches), so memory returns to the system while no mapping is ever split. MADV_FREE,
// not MADV_DONTNEED: the kernel takes the pages only when it needs memory, and until then
// a slot handed out again is written without a page fault, which on a virtual machine
// costs several microseconds, more than everything else a spawn does. So that a burst of
// greenlets does not leave the process looking large, at most GREENLETS_LAZY_FREE_STACKS
// slots per thread are held lazily; past that, all of them are emptied at once
// (MADV_DONTNEED), and trim() does the same.
//
// A chunk whose slots are all free stays mapped, its guard pages in place, on a list of
// empty chunks reused before anything new is mapped: a program that holds 100,000
// greenlets, drops them and spawns as many again would otherwise pay an mmap, a guard
// install and an munmap per chunk each round. What stays mapped is bounded by the peak
// of chunks in use over the current and the previous window of allocations; past it an
// emptied chunk is unmapped, and at the end of each window the excess goes. trim()
// unmaps every empty chunk. Nothing is written into
// the stacks, and nothing allocated while greenlets are dropped outlives the drop (it
// would pin the top of the heap over their freed records): the lists of chunks are
// intrusive, the warm cache is reserved whole up front.
class stack_pool {
 public:
  static constexpr std::size_t max_cached_per_size =
      256;                                       // warm stacks per size, the spare included
  static constexpr std::size_t max_dirty = 256;  // free slots left resident before a flush
  static constexpr std::size_t max_lazy = GREENLETS_LAZY_FREE_STACKS;  // MADV_FREE'd slots
  static constexpr std::size_t max_slots_per_chunk = 64;
  static constexpr std::size_t max_chunk_bytes = std::size_t{32} << 20;
  // Allocations from chunks per window of the peak that bounds the empty chunks kept.
  static constexpr std::size_t window_allocations = std::size_t{1} << 18;

  stack_pool() = default;
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;
  ~stack_pool() {
    trim(0);
    // Chunks still in use hold stacks of greenlets leaked on purpose: they stay mapped.
    for (auto& entry : chunks_) delete entry.second;
    alive() = false;
  }

  // False once the thread has destroyed its pool.
  static bool live() noexcept { return alive(); }

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
    if (b.partial.head == nullptr) {
      if (chunk* e = b.empty.head) {
        b.empty.remove(e);
        b.partial.push(e);
      } else {
        add_chunk(b);
      }
    }
    chunk* c = b.partial.head;
    // Prefer a slot whose pages are still resident.
    const std::uint64_t from = c->dirty != 0 ? c->dirty : c->lazy != 0 ? c->lazy : c->free;
    const std::uint64_t bit = from & (~from + 1);  // the lowest
    if (c->dirty & bit) {
      c->dirty &= ~bit;
      --dirty_;
      if (c->dirty == 0) dirty_list_.remove(c);
    } else if (c->lazy & bit) {
      c->lazy &= ~bit;
      --lazy_;
    }
    c->free &= ~bit;
    if (c->free == 0) b.partial.remove(c);
    if (c->used++ == 0) {
      used_bytes_ += c->bytes();
      if (used_bytes_ > window_peak_) window_peak_ = used_bytes_;
    }
    const stack_context sc = c->stack(static_cast<std::size_t>(__builtin_ctzll(bit)));
    if (++allocations_ == window_allocations) end_window();
    return sc;
  }

  void deallocate(stack_context sc) noexcept {
    for (bucket& b : buckets_) {
      if (b.size == sc.size) {
        // One place of the cache is the spare's (tls_spare_stack), whatever its size.
        if (b.warm.size() + 1 < max_cached_per_size && push(b.warm, sc)) return;
        break;
      }
    }
    release(sc);
  }

  // Releases cached stacks until at most `keep` per size remain ready, unmaps every
  // empty chunk, and empties the free slots of chunks still in use.
  void trim(std::size_t keep) noexcept {
    if (tls_spare_stack.sp != nullptr) {
      const stack_context sc = tls_spare_stack;
      tls_spare_stack = stack_context();
      deallocate(sc);
    }
    for (bucket& b : buckets_) {
      while (b.warm.size() > keep) {
        stack_context sc = b.warm.back();
        b.warm.pop_back();
        release(sc);
      }
    }
    unmap_empty(0);
    flush_dirty();
    empty_lazy();
  }

  // Stacks kept ready (warm) across sizes: what trim_stack_pool releases.
  std::size_t cached() const noexcept {
    std::size_t n = tls_spare_stack.sp != nullptr ? 1 : 0;
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
    std::uint64_t lazy = 0;   // bit i: free, given back with MADV_FREE
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
    partial_list partial;        // chunks of this size with free slots, some in use
    partial_list empty;          // chunks of this size with every slot free
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
    mapped_bytes_ += c->bytes();
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

  // Gives a stack back to its chunk; a chunk left empty is kept within the recent peak.
  void release(stack_context sc) noexcept {
    chunk* c = find_chunk(sc);
    bucket* b = c != nullptr ? find_bucket(sc.size) : nullptr;
    if (b == nullptr) {  // not one of ours: a single guarded mapping
      unmap_guarded_stack(sc);
      return;
    }
    const auto offset = static_cast<std::size_t>(static_cast<char*>(sc.sp) - c->base);
    const std::uint64_t bit = std::uint64_t{1} << (offset / c->slot - 1);
    const bool emptied = --c->used == 0;
    if (emptied) {
      used_bytes_ -= c->bytes();
      if (c->free != 0) b->partial.remove(c);
      if (mapped_bytes_ > peak_bytes()) {
        unmap(c);
        return;
      }
      b->empty.push(c);
    } else if (c->free == 0) {
      b->partial.push(c);
    }
    c->free |= bit;
    if (c->dirty == 0) dirty_list_.push(c);
    c->dirty |= bit;
    if (++dirty_ > max_dirty) flush_dirty();
  }

  // The most bytes of chunks in use at once, over this window and the last.
  std::size_t peak_bytes() const noexcept {
    return window_peak_ > last_window_peak_ ? window_peak_ : last_window_peak_;
  }

  void end_window() noexcept {
    allocations_ = 0;
    last_window_peak_ = window_peak_;
    window_peak_ = used_bytes_;
    unmap_empty(peak_bytes());
  }

  // Unmaps empty chunks until at most `limit` bytes of chunks stay mapped.
  void unmap_empty(std::size_t limit) noexcept {
    for (bucket& b : buckets_) {
      while (mapped_bytes_ > limit && b.empty.head != nullptr) {
        chunk* c = b.empty.head;
        b.empty.remove(c);
        unmap(c);
      }
    }
  }

  // Unmaps a chunk that is on no list of its bucket.
  void unmap(chunk* c) noexcept {
    if (c->dirty != 0) {
      dirty_ -= static_cast<std::size_t>(__builtin_popcountll(c->dirty));
      dirty_list_.remove(c);
    }
    lazy_ -= static_cast<std::size_t>(__builtin_popcountll(c->lazy));
    ::munmap(c->base, c->bytes());
    mapped_bytes_ -= c->bytes();
    chunks_.erase(reinterpret_cast<std::uintptr_t>(c->base));
    delete c;
  }

  // Gives back the pages of every dirty free slot (lazily: see the class comment).
  void flush_dirty() noexcept {
    const int advice = lazy_ + dirty_ <= max_lazy ? lazy_advice() : MADV_DONTNEED;
    while (chunk* c = dirty_list_.head) {
      empty_slots(c, c->dirty, advice);
      if (advice != MADV_DONTNEED) {
        c->lazy |= c->dirty;
        lazy_ += static_cast<std::size_t>(__builtin_popcountll(c->dirty));
      }
      c->dirty = 0;
      dirty_list_.remove(c);
    }
    dirty_ = 0;
    if (advice == MADV_DONTNEED) empty_lazy();
  }

  // Empties at once every slot given back lazily.
  void empty_lazy() noexcept {
    if (lazy_ == 0) return;
    for (auto& entry : chunks_) {
      chunk* c = entry.second;
      empty_slots(c, c->lazy, MADV_DONTNEED);
      c->lazy = 0;
    }
    lazy_ = 0;
  }

  // madvise(advice) on the stacks of the slots `bits` of `c`, a run of neighbouring
  // slots at a time: from the first slot's stack (above its guard page) to the end of the
  // last slot; guard markers in between survive both MADV_FREE and MADV_DONTNEED.
  static void empty_slots(chunk* c, std::uint64_t bits, int advice) noexcept {
    const std::size_t guard = page_size();
    while (bits != 0) {
      const auto first = static_cast<std::size_t>(__builtin_ctzll(bits));
      std::size_t last = first;
      while (last + 1 < 64 && ((bits >> (last + 1)) & 1U) != 0) ++last;
      char* from = c->base + first * c->slot + guard;
      char* to = c->base + (last + 1) * c->slot;
      if (::madvise(from, static_cast<std::size_t>(to - from), advice) != 0 &&
          advice != MADV_DONTNEED) {
        // A kernel without MADV_FREE (before Linux 4.5): from now on, at once.
        lazy_advice_flag().store(MADV_DONTNEED, std::memory_order_relaxed);
        ::madvise(from, static_cast<std::size_t>(to - from), MADV_DONTNEED);
      }
      for (std::size_t i = first; i <= last; ++i) bits &= ~(std::uint64_t{1} << i);
    }
  }

  static std::atomic<int>& lazy_advice_flag() noexcept {
#ifdef MADV_FREE
    static std::atomic<int> advice{MADV_FREE};
#else
    static std::atomic<int> advice{MADV_DONTNEED};
#endif
    return advice;
  }
  static int lazy_advice() noexcept { return lazy_advice_flag().load(std::memory_order_relaxed); }

  static bool& alive() noexcept {
    thread_local bool flag = true;
    return flag;
  }

  std::vector<bucket> buckets_;
  std::map<std::uintptr_t, chunk*> chunks_;  // by base address
  dirty_list dirty_list_;                    // chunks with dirty free slots
  std::size_t dirty_ = 0;
  std::size_t lazy_ = 0;              // slots given back with MADV_FREE
  std::size_t mapped_bytes_ = 0;      // all chunks
  std::size_t used_bytes_ = 0;        // chunks with a slot handed out or cached warm
  std::size_t window_peak_ = 0;       // most of used_bytes_ in this window
  std::size_t last_window_peak_ = 0;  // and in the last
  std::size_t allocations_ = 0;       // from chunks in this window
};

// Takes the spare stack.
inline stack_context take_spare() noexcept {
  const stack_context sc = tls_spare_stack;
  tls_spare_stack = stack_context();
  return sc;
}

// pool_allocate() for a request not of the spare's exact size (or with no spare): the
// spare if the request rounds to its size, else the pool, or a fresh stack once the
// thread has destroyed its pool. Out of line, so that the usual hand-out needs no frame.
GREENLETS_NOINLINE inline stack_context pool_allocate_slow(std::size_t size) {
  if (tls_spare_stack.sp != nullptr && tls_spare_stack.size == round_to_pages(size)) {
    return take_spare();
  }
  if (stack_pool* pool = stack_pool::local()) return pool->allocate(size);
  return map_guarded_stack(size);
}

// A stack from this thread's pool (a fresh one once the thread has destroyed its pool).
inline stack_context pool_allocate(std::size_t size) {
  // A spare's size is whole pages already: a request of exactly that size (the default
  // stack size is) needs no rounding, which costs a division.
  if (tls_spare_stack.sp != nullptr && tls_spare_stack.size == size) return take_spare();
  return pool_allocate_slow(size);
}

// Makes `sc`, from pool_allocate, the spare if that place is free (and the pool lives);
// false, having done nothing, if not.
inline bool pool_deallocate_to_spare(stack_context sc) noexcept {
  if (tls_spare_stack.sp != nullptr || !stack_pool::live()) return false;
  tls_spare_stack = sc;
  return true;
}

// pool_deallocate() when the spare's place is taken (or the pool is gone).
GREENLETS_NOINLINE inline void pool_deallocate_slow(stack_context sc) noexcept {
  if (stack_pool* pool = stack_pool::local()) {
    pool->deallocate(sc);
  } else {
    unmap_guarded_stack(sc);
  }
}

// Gives a stack from pool_allocate back to this thread's pool.
inline void pool_deallocate(stack_context sc) noexcept {
  if (!pool_deallocate_to_spare(sc)) pool_deallocate_slow(sc);
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_STACK_POOL_HPP
