// Calibrators: streaming observers that see batches of FP32 activations and turn them into a
// quantization range (QUANT_SPEC A.2, B.2, C.4, C.5, C.9).
//
//   auto obs = octet::quant::make_observer({.kind = CalibratorKind::kl});
//   for (const auto& batch : calibration_batches) obs->observe(batch);   // FP32 activations
//   octet::quant::Range r = obs->range(ThresholdMode::symmetric);         // r.min == -r.max
//   nlohmann::json saved = obs->to_json();            // statistics, mergeable across runs
//   auto again = octet::quant::observer_from_json(saved);
//   again->merge(*other_run);
//
// Observers (CalibratorSpec::kind):
//   max         running min, max and max|x| over everything seen.
//   ema         exponential moving averages of per-batch max|x|, min and max with `decay`: the
//               first batch initialises, then v <- v - (1 - decay) * (v - batch_v), i.e.
//               decay * v + (1 - decay) * batch_v (Q8BERT, decay 0.9999, A.2; I-BERT momentum
//               0.95, B.2; both update before the range is read).
//   percentile  histogram (below); symmetric: the p-th percentile of |x|; independent: the
//               (100 - p) / 2 and 100 - (100 - p) / 2 percentiles of signed x (ORT, C.9). Linear
//               interpolation inside the bin that crosses the target mass (counts uniform in a
//               bin).
//   kl          histogram; minimises KL(P || Q) over candidate clip points (C.4). Form `abs`
//               (TensorRT): |x| histogram of `bins` bins, P clipped to i bins (outlier mass added
//               to bin i - 1) quantised to 128 levels, i = 128 .. bins. Form `signed` (MXNet):
//               the centred slice of 2i signed bins quantised to 255 levels, i = 128 .. bins.
//               Q is built from P by merging into levels (the remainder joins the last group) and
//               spreading each group evenly over its non-zero bins; both are smoothed with
//               epsilon 1e-4 (zeros get 1e-4, non-zeros lose 1e-4 * n_zero / n_nonzero). Ties go
//               to the larger threshold (NVIDIA's last argmin). Threshold = right edge of bin i-1.
//   mse         histogram; minimises the expected squared error of fake-quantising every bin
//               centre with 127 levels per side over candidate thresholds (bin edges 1 .. bins).
// Histogram layout: `bins` bins per side over [-R, R] (default 2048, so the folded |x| histogram
// is TensorRT's 2048 bins); 0 is a bin edge and zeros count in the first positive bin. R is set by
// the first batch with a non-zero max|x|; when a later batch exceeds R, R doubles (repeatedly) and
// adjacent bin pairs merge, which re-bins the old counts exactly. Merging histograms with different
// R re-bins the smaller one by splitting each bin's count in proportion to its overlap.
//
// Threshold modes (C.5): symmetric: one threshold T, range [-T, T]; independent: the negative and
// positive thresholds are found separately (for histograms: each half on its own, 128 levels,
// percentile tails as above), range [T_min, T_max] with T_min <= 0 <= T_max; conjugate: as
// independent, then T = max(|T_min|, T_max) and range [-T, T].
//
// Errors: observe() rejects NaN/Inf with InvalidArgument (index named); range() on an observer
// that has seen nothing throws InvalidArgument; from_json / merge of malformed or mismatched
// statistics throw ModelFormatError / InvalidArgument naming the key. An observer is not
// thread-safe; use one per tensor per thread and merge.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace octet::quant {

enum class CalibratorKind { max, ema, percentile, kl, mse };
enum class KlForm { abs, signed_ };  // TensorRT over |x| (128 levels) / signed (255 levels)
enum class ThresholdMode { symmetric, independent, conjugate };

std::string_view to_string(CalibratorKind k);
std::string_view to_string(KlForm f);  // "abs", "signed"
std::string_view to_string(ThresholdMode m);

struct CalibratorSpec {
  CalibratorKind kind = CalibratorKind::max;
  double decay = 0.9999;         // ema
  double percentile = 99.99;     // percentile, in (0, 100]
  KlForm kl_form = KlForm::abs;  // kl
  int bins = 2048;               // histogram bins per side (percentile, kl, mse); >= 128
};

// Throws InvalidArgument naming the field for decay outside (0, 1), percentile outside (50, 100],
// bins outside [128, 1 << 20].
void validate(const CalibratorSpec& spec);

struct Range {
  float min = 0.0f;
  float max = 0.0f;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void observe(std::span<const float> x) = 0;
  virtual Range range(ThresholdMode mode) const = 0;
  // {"kind": ..., parameters..., "count": N, statistics...}; observer_from_json inverts it.
  virtual nlohmann::json to_json() const = 0;
  // Adds another observer's statistics (same kind and parameters). EMA observers are
  // order-dependent and throw Unsupported.
  virtual void merge(const Observer& other) = 0;
  const CalibratorSpec& spec() const { return spec_; }
  int64_t count() const { return count_; }  // elements observed

 protected:
  explicit Observer(const CalibratorSpec& spec) : spec_(spec) {}
  void check_observed() const;
  CalibratorSpec spec_;
  int64_t count_ = 0;
};

std::unique_ptr<Observer> make_observer(const CalibratorSpec& spec);
// Throws ModelFormatError "<where>: key \"...\" ..." for a malformed document.
std::unique_ptr<Observer> observer_from_json(const nlohmann::json& j,
                                             std::string_view where = "observer");

// --- Threshold searches on a histogram, exposed for tests and for other histogram sources ------
// `hist` holds counts of |x| (or of one side) in bins of width `bin_width` starting at 0.

// The p-th percentile (p in (0, 100]) of the histogram's mass, linearly interpolated.
double percentile_threshold(std::span<const double> hist, double bin_width, double p);

// TensorRT-form KL search: clip to i bins for i = levels .. hist.size(), quantise to `levels`.
// Returns the threshold (right edge of bin i* - 1).
double kl_threshold_abs(std::span<const double> hist, double bin_width, int levels = 128);

// Signed-form KL search on a signed histogram of 2 * half bins over [-half * w, half * w]:
// centred slices of 2i bins, i = ceil(levels / 2) .. half, quantised to `levels`.
double kl_threshold_signed(std::span<const double> signed_hist, double bin_width, int levels = 255);

// MSE search: the threshold among bin edges minimising sum_j hist[j] * (c_j - fq(c_j))^2 with
// c_j the bin centre and fq a symmetric `levels_per_side`-level fake quantiser.
double mse_threshold(std::span<const double> hist, double bin_width, int levels_per_side = 127);

// KL(P || Q) with both smoothed as described above; infinity if either is all zeros.
double smoothed_kl(std::span<const double> p, std::span<const double> q, double eps = 1e-4);

}  // namespace octet::quant
