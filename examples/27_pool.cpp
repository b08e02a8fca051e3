// 27 — a pool of five runs ten jobs, five at a time, and collects their results.
//
// From the tutorial chapter on processes and threads (its thread pool part): a
// ThreadPoolExecutor(5) runs submitted tasks, each sleeping, and a callback prints
// each result. Here a greenlets::pool(5) runs ten jobs of 20 ms as tasks; map()
// returns the results in input order.
//
//   from concurrent.futures import ThreadPoolExecutor
//   import time
//   pool = ThreadPoolExecutor(5)
//   def task():
//       print('线程任务开始了...')   # job starts
//       time.sleep(1)
//       print('线程任务结束了...')   # job ends
//       return 123
//   def call_back(res):
//       print(res.result())
//   for line in range(5):
//       pool.submit(task).add_done_callback(call_back)
#include <chrono>
#include <iostream>
#include <vector>

#include <greenlets/hub.hpp>

using namespace std::chrono_literals;

int job(int n) {
  std::cout << "job " << n << " starts\n";
  greenlets::sleep(20ms);
  std::cout << "job " << n << " ends\n";
  return n * n;
}

int main() {
  greenlets::pool pool(5);
  std::vector<int> inputs{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<int> results = pool.map(job, inputs);  // waits while the pool is full
  std::cout << "results:";
  for (int r : results) std::cout << ' ' << r;
  std::cout << '\n';
}

// Expected output:
// job 0 starts
// job 1 starts
// job 2 starts
// job 3 starts
// job 4 starts
// job 0 ends
// job 1 ends
// job 2 ends
// job 3 ends
// job 4 ends
// job 5 starts
// job 6 starts
// job 7 starts
// job 8 starts
// job 9 starts
// job 5 ends
// job 6 ends
// job 7 ends
// job 8 ends
// job 9 ends
// results: 0 1 4 9 16 25 36 49 64 81
