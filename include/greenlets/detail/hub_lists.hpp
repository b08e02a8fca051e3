// The hub's intrusive containers: a doubly linked list of hooks that live inside the
// objects they link (on a waiting task's stack), and a binary min-heap of timers that
// remembers each timer's slot so cancelling one is O(log n). Neither allocates per
// element; the heap's vector only grows to the most timers ever armed at once.
#ifndef GREENLETS_DETAIL_HUB_LISTS_HPP
#define GREENLETS_DETAIL_HUB_LISTS_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace greenlets::detail {

struct list_hook {
  list_hook* prev = nullptr;
  list_hook* next = nullptr;
  bool linked() const noexcept { return next != nullptr; }
};

// A FIFO of `Hook`s (each a class derived from list_hook); O(1) push, pop and erase.
template <class Hook>
class hook_list {
 public:
  hook_list() noexcept { head_.prev = head_.next = &head_; }
  hook_list(const hook_list&) = delete;
  hook_list& operator=(const hook_list&) = delete;

  bool empty() const noexcept { return head_.next == &head_; }
  Hook* front() noexcept { return empty() ? nullptr : static_cast<Hook*>(head_.next); }
  // Walking backwards over the raw hooks (null past the first).
  list_hook* back_hook() noexcept { return empty() ? nullptr : head_.prev; }
  list_hook* prev_hook(list_hook* h) noexcept { return h->prev == &head_ ? nullptr : h->prev; }

  void push_back(Hook& h) noexcept {
    list_hook* n = &h;
    n->prev = head_.prev;
    n->next = &head_;
    head_.prev->next = n;
    head_.prev = n;
  }
  Hook* pop_front() noexcept {
    Hook* h = front();
    if (h != nullptr) erase(*h);
    return h;
  }
  static void erase(Hook& h) noexcept {
    list_hook* n = &h;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = nullptr;
  }

 private:
  list_hook head_;
};

// A timer armed in the hub: fires `fire(*this)` in the hub once `when` has passed.
struct timer_node {
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::chrono::steady_clock::time_point when{};
  std::uint64_t seq = 0;  // equal deadlines fire in arming order
  std::size_t index = npos;
  void (*fire)(timer_node&) = nullptr;
  bool armed() const noexcept { return index != npos; }
};

// The armed timers, earliest first: a 4-ary heap whose entries carry their deadline, so
// that ordering reads only the heap's own array. Timers live on the stacks of the
// greenlets that armed them, one page each; comparing through pointers to them would
// touch ten thousand pages for ten thousand sleepers. (libev orders its timers the same
// way, for the same reason.) A node learns its position on each move, for O(log n) erase.
class timer_heap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  timer_node* top() const noexcept { return heap_.empty() ? nullptr : heap_.front().node; }
  // The earliest deadline; the heap must not be empty.
  std::chrono::steady_clock::time_point top_when() const noexcept { return heap_.front().when; }

  void push(timer_node& t) {
    t.seq = ++seq_;
    heap_.push_back(entry{t.when, t.seq, &t});
    t.index = heap_.size() - 1;
    sift_up(t.index);
  }

  void erase(timer_node& t) noexcept {
    if (!t.armed()) return;
    const std::size_t i = t.index;
    const std::size_t last = heap_.size() - 1;
    t.index = timer_node::npos;
    if (i != last) {
      const entry moved = heap_[last];
      heap_.pop_back();
      heap_[i] = moved;
      if (i > 0 && before(moved, heap_[(i - 1) / arity])) {
        sift_up(i);
      } else {
        sift_down(i);
      }
    } else {
      heap_.pop_back();
    }
  }

 private:
  static constexpr std::size_t arity = 4;

  struct entry {
    std::chrono::steady_clock::time_point when;
    std::uint64_t seq;
    timer_node* node;
  };

  static bool before(const entry& a, const entry& b) noexcept {
    return a.when < b.when || (a.when == b.when && a.seq < b.seq);
  }

  // Moves the entry at `i` up to its place, each entry it passes one level down.
  void sift_up(std::size_t i) noexcept {
    const entry e = heap_[i];
    while (i > 0) {
      const std::size_t up = (i - 1) / arity;
      if (!before(e, heap_[up])) break;
      heap_[i] = heap_[up];
      heap_[i].node->index = i;
      i = up;
    }
    heap_[i] = e;
    e.node->index = i;
  }

  void sift_down(std::size_t i) noexcept {
    const entry e = heap_[i];
    const std::size_t n = heap_.size();
    for (;;) {
      const std::size_t first = arity * i + 1;
      if (first >= n) break;
      const std::size_t end = first + arity < n ? first + arity : n;
      std::size_t best = first;
      for (std::size_t c = first + 1; c < end; ++c) {
        if (before(heap_[c], heap_[best])) best = c;
      }
      if (!before(heap_[best], e)) break;
      heap_[i] = heap_[best];
      heap_[i].node->index = i;
      i = best;
    }
    heap_[i] = e;
    e.node->index = i;
  }

  std::vector<entry> heap_;
  std::uint64_t seq_ = 0;
};

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_HUB_LISTS_HPP
