#include "runtime/thread_pool.h"

#include <fmt/format.h>

#include "octet/error.h"

namespace octet::runtime {

ThreadPool::ThreadPool(int workers) : workers_(workers) {
  if (workers < 1) {
    throw InvalidArgument(fmt::format("thread pool: workers must be >= 1, found {}", workers));
  }
  threads_.reserve(workers - 1);
  for (int w = 1; w < workers; ++w) threads_.emplace_back([this, w] { loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::loop(int worker) {
  uint64_t seen = 0;
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    std::exception_ptr err;
    try {
      job.call(job.fn, worker);
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (err && !error_) error_ = err;
    if (--pending_ == 0) done_cv_.notify_one();
  }
}

void ThreadPool::run_job(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = job;
    error_ = nullptr;
    pending_ = workers_ - 1;
    ++generation_;
  }
  start_cv_.notify_all();
  std::exception_ptr err;
  try {
    job.call(job.fn, 0);
  } catch (...) {
    err = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_ == 0; });
  job_ = {nullptr, nullptr};
  if (!err) err = error_;
  error_ = nullptr;
  lock.unlock();
  if (err) std::rethrow_exception(err);
}

}  // namespace octet::runtime
