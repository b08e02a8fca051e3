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

class timer_heap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  timer_node* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }

  void push(timer_node& t) {
    t.seq = ++seq_;
    heap_.push_back(&t);
    t.index = heap_.size() - 1;
    sift_up(t.index);
  }

  void erase(timer_node& t) noexcept {
    if (!t.armed()) return;
    const std::size_t i = t.index;
    const std::size_t last = heap_.size() - 1;
    if (i != last) {
      place(i, heap_[last]);
      heap_.pop_back();
      sift_down(i);
      sift_up(i);
    } else {
      heap_.pop_back();
    }
    t.index = timer_node::npos;
  }

 private:
  static bool before(const timer_node* a, const timer_node* b) noexcept {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
  }
  void place(std::size_t i, timer_node* t) noexcept {
    heap_[i] = t;
    t->index = i;
  }
  void sift_up(std::size_t i) noexcept {
    while (i > 0) {
      const std::size_t up = (i - 1) / 2;
      if (!before(heap_[i], heap_[up])) break;
      timer_node* a = heap_[i];
      place(i, heap_[up]);
      place(up, a);
      i = up;
    }
  }
  void sift_down(std::size_t i) noexcept {
    const std::size_t n = heap_.size();
    for (;;) {
      std::size_t best = i;
      const std::size_t l = 2 * i + 1;
      const std::size_t r = l + 1;
      if (l < n && before(heap_[l], heap_[best])) best = l;
      if (r < n && before(heap_[r], heap_[best])) best = r;
      if (best == i) break;
      timer_node* a = heap_[i];
      place(i, heap_[best]);
      place(best, a);
      i = best;
    }
  }

  std::vector<timer_node*> heap_;
  std::uint64_t seq_ = 0;
};

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_HUB_LISTS_HPP
