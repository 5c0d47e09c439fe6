#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <cstdio>

#include "cli.h"
#include "octet/error.h"

namespace octet::cli {

Progress::Progress(std::string label, std::size_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::advance(std::size_t n) {
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ >= std::chrono::milliseconds(100)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final) {
  constexpr int kWidth = 30;
  double frac = total_ == 0 ? 1.0 : static_cast<double>(done_) / static_cast<double>(total_);
  if (frac > 1) frac = 1;
  int filled = static_cast<int>(frac * kWidth);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? static_cast<double>(done_) / secs : 0;
  double eta = rate > 0 ? static_cast<double>(total_ - std::min(done_, total_)) / rate : 0;
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  std::fputs(
      fmt::format("\r{} [{}] {}/{} {:.0f}/s {}", label_, bar, done_, total_, rate,
                  final ? fmt::format("{:.1f}s   \n", secs) : fmt::format("eta {:.0f}s   ", eta))
          .c_str(),
      stderr);
  std::fflush(stderr);
}

void set_threads(int threads) {
  if (threads < 0) {
    throw InvalidArgument(fmt::format("--threads must be >= 0 (0 = all cores), found {}", threads));
  }
  if (threads > 0) omp_set_num_threads(threads);
}

}  // namespace octet::cli
