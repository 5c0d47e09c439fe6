// ops::MatmulF32 (oneDNN matmul with reordered weights) against a plain double-precision GEMM.
#include "ops/matmul_f32.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace octet::ops {
namespace {

// Shared by the calls of a test; grown as needed.
AlignedBuffer<std::byte> scratch;

std::vector<float> random_vector(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// y = x W^T + b (+ y0), W in PyTorch [N, K] layout.
std::vector<double> naive(const std::vector<float>& x, const std::vector<float>& w,
                          const std::vector<float>& b, const std::vector<float>& y0, int64_t m,
                          int64_t n, int64_t k) {
  std::vector<double> y(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = b.empty() ? 0.0 : b[j];
      for (int64_t c = 0; c < k; ++c) acc += double(x[i * k + c]) * w[j * k + c];
      y[i * n + j] = acc + (y0.empty() ? 0.0 : y0[i * n + j]);
    }
  }
  return y;
}

TEST(MatmulF32, MatchesNaiveGemmOnRaggedShapes) {
  for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 1}, {3, 5}, {17, 33}, {64, 128}, {96, 768}}) {
    const std::vector<float> w = random_vector(n * k, 1 + n), b = random_vector(n, 2 + k);
    MatmulF32 mm(w, n, k, b);
    for (int64_t m : {1, 2, 7, 16, 33, 129}) {
      const std::vector<float> x = random_vector(m * k, 3 + m);
      std::vector<float> y(m * n, -1.0f);
      mm.run(x.data(), m, y.data(), /*accumulate=*/false, scratch);
      const std::vector<double> want = naive(x, w, b, {}, m, n, k);
      for (int64_t i = 0; i < m * n; ++i) {
        ASSERT_NEAR(y[i], want[i], 1e-5 * std::sqrt(double(k)) * 4)
            << "m=" << m << " n=" << n << " k=" << k << " row " << i / n << " col " << i % n;
      }
    }
  }
}

TEST(MatmulF32, AccumulateAddsTheResidualAlreadyInY) {
  const int64_t m = 9, n = 24, k = 40;
  const std::vector<float> w = random_vector(n * k, 5), b = random_vector(n, 6);
  const std::vector<float> x = random_vector(m * k, 7), y0 = random_vector(m * n, 8);
  MatmulF32 mm(w, n, k, b);
  std::vector<float> y = y0;
  mm.run(x.data(), m, y.data(), /*accumulate=*/true, scratch);
  const std::vector<double> want = naive(x, w, b, y0, m, n, k);
  for (int64_t i = 0; i < m * n; ++i) ASSERT_NEAR(y[i], want[i], 1e-4) << i;
}

TEST(MatmulF32, WorksWithoutBias) {
  const int64_t m = 5, n = 7, k = 3;
  const std::vector<float> w = random_vector(n * k, 9), x = random_vector(m * k, 10);
  MatmulF32 mm(w, n, k, {});
  std::vector<float> y(m * n);
  mm.run(x.data(), m, y.data(), false, scratch);
  const std::vector<double> want = naive(x, w, {}, {}, m, n, k);
  for (int64_t i = 0; i < m * n; ++i) ASSERT_NEAR(y[i], want[i], 1e-5) << i;
}

}  // namespace
}  // namespace octet::ops
