// A fork-join pool of persistent threads for the runtime scheduler: run(fn) calls fn(w) once for
// every worker w in [0, size()), worker 0 on the calling thread, and returns when all are done,
// rethrowing the first exception a worker threw. Threads start in the constructor and are joined
// in the destructor; run() may be called by one thread at a time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace octet::runtime {

class ThreadPool {
 public:
  explicit ThreadPool(int workers);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return workers_; }
  void run(const std::function<void(int worker)>& fn);

 private:
  void loop(int worker);

  int workers_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace octet::runtime
