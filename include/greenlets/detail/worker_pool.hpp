// The hub's worker threads for `run_in_thread`: a fixed number of threads, started on
// first use, taking jobs from one locked FIFO. Joined when the owning hub goes.
#ifndef GREENLETS_DETAIL_WORKER_POOL_HPP
#define GREENLETS_DETAIL_WORKER_POOL_HPP

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace greenlets::detail {

class worker_pool {
 public:
  explicit worker_pool(std::size_t size) : size_(size) {}
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;
  ~worker_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  std::size_t size() const noexcept { return size_; }

  // The count limits how many threads are started; lowering it stops none.
  void resize(std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_ = size;
  }

  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
      // A new thread only when the idle ones cannot take every queued job.
      if (jobs_.size() > idle_ && threads_.size() < size_) {
        threads_.emplace_back([this] { work(); });
      }
    }
    ready_.notify_one();
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;  // stopping, and nothing left to do
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();  // jobs catch their own exceptions
      job = nullptr;
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::size_t size_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_WORKER_POOL_HPP
