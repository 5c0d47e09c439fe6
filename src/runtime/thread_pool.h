// A fork-join pool of persistent threads for the runtime scheduler: run(fn) calls fn(w) once for
// every worker w in [0, size()), worker 0 on the calling thread, and returns when all are done,
// rethrowing the first exception a worker threw. Threads start in the constructor and are joined
// in the destructor; run() may be called by one thread at a time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace octet::runtime {

class ThreadPool {
 public:
  explicit ThreadPool(int workers);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return workers_; }
  // fn is called by reference (never copied or stored beyond the call): no allocation per run.
  template <class Fn>
  void run(Fn&& fn) {
    run_job({&fn,
             [](void* f, int worker) { (*static_cast<std::remove_reference_t<Fn>*>(f))(worker); }});
  }

 private:
  struct Job {
    void* fn;
    void (*call)(void* fn, int worker);
  };
  void run_job(Job job);
  void loop(int worker);

  int workers_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  Job job_{nullptr, nullptr};
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace octet::runtime
