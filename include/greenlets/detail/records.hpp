// The records behind the handles: a greenlet (`greenlet_impl`, with the user's
// callable in `user_greenlet`, or a thread's `main_greenlet`), the record of the
// thread that owns it, and their reference counts.
//
// Part of greenlet.hpp, which includes it; include that instead. How the pieces
// fit together (the switch, its flag word, why fcontext) is in docs/architecture.md.
#ifndef GREENLETS_DETAIL_RECORDS_HPP
#define GREENLETS_DETAIL_RECORDS_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include <boost/context/detail/fcontext.hpp>

#include "greenlets/detail/exception_state.hpp"
#include "greenlets/detail/invoke.hpp"
#include "greenlets/detail/sanitizers.hpp"
#include "greenlets/greenlet.hpp"
#include "greenlets/stack.hpp"
#include "greenlets/value.hpp"

namespace greenlets::detail {

// The bottom frame of a greenlet's stack, one per record type (switch.hpp), so that
// `run` is called and dropped without a virtual call.
template <class G>
void greenlet_entry(boost::context::detail::transfer_t t) noexcept;

enum status_bits : std::uint8_t {
  status_started = 1,
  status_dead = 2,
  // Entered only to die of a throw before `run` (so that tracing sees it, as Python
  // does); it ends not started.
  status_unrun = 4,
};

// The switch's fast path is one comparison: a greenlet's `switch_key` equals the
// calling thread's `tls_switch_key` only when the greenlet is started, not dead,
// and belongs to that thread, and no other thread has queued a kill for it. A key
// is the owning thread's record address (alive while any of its greenlets is);
// these two values never match a thread's key.
inline constexpr std::uintptr_t inactive_key = 1;   // a greenlet not started, or dead
inline constexpr std::uintptr_t no_thread_key = 0;  // a thread with no state, or kills queued

// What outlives a thread for the greenlets it created: its identity, whether it
// still runs, and the kills other threads queued for it.
struct thread_record {
  std::atomic<std::size_t> refs{1};
  std::thread::id id = std::this_thread::get_id();
  unsigned long number = next_number();
  std::mutex mutex;  // guards `alive`, `kill_queue` and `switch_key_slot`
  bool alive = true;
  std::vector<greenlet_impl*> kill_queue;
  std::atomic<bool> kills_pending{false};
  // The owner's tls_switch_key, which a thread queuing a kill clears so that the
  // owner's next switch takes the slow path, which runs the queue.
  std::atomic<std::uintptr_t>* switch_key_slot = nullptr;

  std::uintptr_t key() const noexcept { return reinterpret_cast<std::uintptr_t>(this); }

  static unsigned long next_number() noexcept {
    static std::atomic<unsigned long> counter{0};
    return ++counter;
  }
  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  bool exited() {
    std::lock_guard<std::mutex> lock(mutex);
    return !alive;
  }
};

// The greenlet itself; handles count references to it.
struct greenlet_impl {
  // What a switch touches first, together.
  std::atomic<std::uintptr_t> switch_key{inactive_key};  // record->key() while started and alive
  boost::context::detail::fcontext_t ctx = nullptr;      // where it resumes, while switched out
  value* inbox = nullptr;  // where the pending switch wants its result
  exception_state eh;      // the exception globals while switched out
  std::atomic<std::size_t> refs{1};
  std::atomic<std::uint8_t> status{0};
  bool is_main = false;
  bool fresh = false;     // started, not yet landed on its stack: no jump can run on top of it
  thread_record* record;  // strong reference
  greenlet_impl* parent;  // strong reference; null for a main greenlet
  tool_state tools;
  stack_context stack{};
  std::size_t stack_size = default_stack_size;
  stack_allocator allocator;
  // This thread's started, unfinished greenlets, newest first (thread_state::active_head):
  // where this one is linked from (the head or the previous one's active_next), and the next.
  greenlet_impl** active_pprev = nullptr;
  greenlet_impl* active_next = nullptr;
  // For people and debuggers, never read by a switch: a number unique in its thread
  // (the main greenlet's is 0) and an optional name (options::name, set_name()).
  std::uint64_t number = 0;
  std::unique_ptr<char[]> name;
  void (*entry)(boost::context::detail::transfer_t) noexcept = nullptr;  // greenlet_entry<G>

  // The record needs no reference of its own: a greenlet holds its parent, and every
  // chain of parents ends at its thread's main greenlet, which holds the record.
  greenlet_impl(thread_record* r, greenlet_impl* p) noexcept : record(r), parent(p) {}
  greenlet_impl(const greenlet_impl&) = delete;
  greenlet_impl& operator=(const greenlet_impl&) = delete;
  virtual ~greenlet_impl();

  // From the thread's spare blocks when it has one (thread_state.hpp).
  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size) noexcept;
  // An over-aligned callable: the global allocator, as without the cache.
  static void* operator new(std::size_t size, std::align_val_t align) {
    return ::operator new(size, align);
  }
  static void operator delete(void* p, std::size_t, std::align_val_t align) noexcept {
    ::operator delete(p, align);  // unsized: clang has no sized deallocation by default
  }

  virtual void drop_run() noexcept = 0;

  bool is(std::uint8_t bits) const noexcept {
    return (status.load(std::memory_order_relaxed) & bits) != 0;
  }
  void set(std::uint8_t bits) noexcept {
    status.store(static_cast<std::uint8_t>(status.load(std::memory_order_relaxed) | bits),
                 std::memory_order_release);
  }
};

template <class F>
struct user_greenlet final : greenlet_impl {
  union {
    F fn;  // destroyed once run has finished
  };
  bool has_fn = true;

  template <class G>
  user_greenlet(G&& f, thread_record* r, greenlet_impl* p) : greenlet_impl(r, p) {
    ::new (&fn) F(std::forward<G>(f));
    entry = &greenlet_entry<user_greenlet>;
  }
  ~user_greenlet() override { drop_run(); }
  // Runs `run`; its result goes to `result`.
  void invoke(value&& args, value& result) { invoke_run(fn, std::move(args), result); }
  void drop_run() noexcept override {
    if (has_fn) {
      has_fn = false;
      fn.~F();
    }
  }
};

struct main_greenlet final : greenlet_impl {
  explicit main_greenlet(thread_record* r) noexcept : greenlet_impl(r, nullptr) {
    r->add_ref();  // released by ~greenlet_impl
    is_main = true;
    status.store(status_started, std::memory_order_relaxed);
    switch_key.store(r->key(), std::memory_order_relaxed);
  }
  void drop_run() noexcept override {}
};

inline void add_ref(greenlet_impl* g) noexcept { g->refs.fetch_add(1, std::memory_order_relaxed); }
inline void release(greenlet_impl* g) noexcept;

// Takes a reference unless the count is already zero: another thread dropped the last
// handle and the greenlet is on its way to this thread's kill queue.
inline bool try_add_ref(greenlet_impl* g) noexcept {
  std::size_t n = g->refs.load(std::memory_order_relaxed);
  while (n != 0) {
    if (g->refs.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

// Makes and opens handles; `greenlet` befriends it.
struct greenlet_access {
  static greenlet adopt(greenlet_impl* g) noexcept { return greenlet(g); }
  static greenlet share(greenlet_impl* g) noexcept {
    add_ref(g);
    return greenlet(g);
  }
  static greenlet_impl* get(const greenlet& g) noexcept { return g.p_; }
};

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_RECORDS_HPP
