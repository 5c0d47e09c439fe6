#include "quant/observer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/kernels.h"
#include "octet/error.h"
#include "quant/quantizer.h"

namespace octet::quant {
namespace {

using nlohmann::json;

constexpr double kKlEpsilon = 1e-4;
constexpr int kAbsLevels = 128;     // TensorRT: magnitudes 0..127
constexpr int kSignedLevels = 255;  // MXNet: codes -127..127
constexpr int kMseLevelsPerSide = 127;
constexpr int kMaxBins = 1 << 20;

struct BatchStats {
  float min = 0.0f, max = 0.0f, abs_max = 0.0f;
};

BatchStats batch_stats(std::span<const float> x) {
  BatchStats s;
  if (x.empty()) return s;
  // One vectorized pass; its NaN result (any non-finite input) leads to the scan naming the
  // element.
  kernels::table().int8.min_max(x.data(), x.size(), &s.min, &s.max);
  if (std::isnan(s.min) || std::isnan(s.max)) check_finite(x, "observe: activations");
  s.abs_max = std::max(std::fabs(s.min), std::fabs(s.max));
  return s;
}

double sum(std::span<const double> v) { return std::accumulate(v.begin(), v.end(), 0.0); }

// Q: `src` (the unclipped counts) merged into `levels` groups, the remainder joining the last
// group, each group's total spread evenly over the bins where `p` is non-zero.
void build_q(std::span<const double> src, std::span<const double> p, int levels,
             std::vector<double>& q) {
  const std::size_t n = src.size();
  const std::size_t merged = n / levels;
  q.assign(n, 0.0);
  for (int g = 0; g < levels; ++g) {
    const std::size_t start = g * merged;
    const std::size_t stop = g == levels - 1 ? n : start + merged;
    double total = 0.0;
    int nonzero = 0;
    for (std::size_t j = start; j < stop; ++j) {
      total += src[j];
      nonzero += p[j] != 0.0;
    }
    if (nonzero == 0) continue;
    const double each = total / nonzero;
    for (std::size_t j = start; j < stop; ++j) q[j] = p[j] != 0.0 ? each : 0.0;
  }
}

// Smooths counts in place; false when the vector is all zeros or smoothing would make a non-zero
// entry <= 0 (the references assert there; a candidate that cannot be smoothed is skipped).
bool smooth(std::vector<double>& v, double eps) {
  std::size_t zeros = 0;
  for (double x : v) zeros += x == 0.0;
  const std::size_t nonzeros = v.size() - zeros;
  if (nonzeros == 0) return false;
  const double take = eps * static_cast<double>(zeros) / static_cast<double>(nonzeros);
  for (double& x : v) {
    if (x == 0.0) {
      x = eps;
    } else {
      x -= take;
      if (x <= 0.0) return false;
    }
  }
  return true;
}

// Threshold modes on a pair of per-side thresholds.
Range apply_mode(ThresholdMode mode, double t_neg, double t_pos, double symmetric_t) {
  switch (mode) {
    case ThresholdMode::symmetric:
      return {static_cast<float>(-symmetric_t), static_cast<float>(symmetric_t)};
    case ThresholdMode::independent:
      return {static_cast<float>(-t_neg), static_cast<float>(t_pos)};
    case ThresholdMode::conjugate: {
      const double t = std::max(t_neg, t_pos);
      return {static_cast<float>(-t), static_cast<float>(t)};
    }
  }
  return {};
}

// --- JSON helpers ---------------------------------------------------------------------------

const json& require(const json& j, const char* key, std::string_view where) {
  auto it = j.find(key);
  if (it == j.end()) {
    throw ModelFormatError(fmt::format("{}: missing key \"{}\"", where, key));
  }
  return *it;
}

double get_number(const json& j, const char* key, std::string_view where) {
  const json& v = require(j, key, where);
  if (!v.is_number()) {
    throw ModelFormatError(
        fmt::format("{}: key \"{}\" is {}: expected a number", where, key, v.type_name()));
  }
  const double d = v.get<double>();
  if (!std::isfinite(d)) {
    throw ModelFormatError(fmt::format("{}: key \"{}\" is not finite", where, key));
  }
  return d;
}

int64_t get_count(const json& j, std::string_view where) {
  const json& v = require(j, "count", where);
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    throw ModelFormatError(
        fmt::format("{}: key \"count\" is {}: expected an integer >= 0", where, v.dump()));
  }
  return v.get<int64_t>();
}

// `extra`: one more allowed key (the parameter of a histogram calibrator kind), or null.
void check_keys(const json& j, std::initializer_list<const char*> allowed, std::string_view where,
                const char* extra = nullptr) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::none_of(allowed.begin(), allowed.end(),
                     [&](const char* k) { return it.key() == k; }) &&
        !(extra != nullptr && it.key() == extra)) {
      throw ModelFormatError(fmt::format("{}: unknown key \"{}\"", where, it.key()));
    }
  }
}

// --- Observers -------------------------------------------------------------------------------

class MaxObserver final : public Observer {
 public:
  explicit MaxObserver(const CalibratorSpec& spec) : Observer(spec) {}

  void observe(std::span<const float> x) override {
    const BatchStats s = batch_stats(x);
    if (x.empty()) return;
    if (count_ == 0) {
      min_ = s.min;
      max_ = s.max;
    } else {
      min_ = std::min(min_, s.min);
      max_ = std::max(max_, s.max);
    }
    count_ += static_cast<int64_t>(x.size());
  }

  Range range(ThresholdMode mode) const override {
    check_observed();
    const double neg = std::max(0.0f, -min_), pos = std::max(0.0f, max_);
    return apply_mode(mode, neg, pos, std::max(neg, pos));
  }

  json to_json() const override {
    return {{"kind", "max"}, {"count", count_}, {"min", min_}, {"max", max_}};
  }

  void merge(const Observer& other) override;

  void load(const json& j, std::string_view where) {
    check_keys(j, {"kind", "count", "min", "max"}, where);
    count_ = get_count(j, where);
    min_ = static_cast<float>(get_number(j, "min", where));
    max_ = static_cast<float>(get_number(j, "max", where));
    if (min_ > max_) {
      throw ModelFormatError(fmt::format("{}: min {} > max {}", where, min_, max_));
    }
  }

 private:
  float min_ = 0.0f, max_ = 0.0f;
};

class EmaObserver final : public Observer {
 public:
  explicit EmaObserver(const CalibratorSpec& spec) : Observer(spec) {}

  void observe(std::span<const float> x) override {
    const BatchStats s = batch_stats(x);
    if (x.empty()) return;
    if (batches_ == 0) {
      abs_max_ = s.abs_max;
      min_ = s.min;
      max_ = s.max;
    } else {
      // A.2 exactly: thr <- thr - (1 - decay) * (thr - max|x|).
      const double a = 1.0 - spec_.decay;
      abs_max_ -= a * (abs_max_ - s.abs_max);
      min_ -= a * (min_ - s.min);
      max_ -= a * (max_ - s.max);
    }
    ++batches_;
    count_ += static_cast<int64_t>(x.size());
  }

  Range range(ThresholdMode mode) const override {
    check_observed();
    const double neg = std::max(0.0, -min_), pos = std::max(0.0, max_);
    return apply_mode(mode, neg, pos, abs_max_);
  }

  json to_json() const override {
    return {{"kind", "ema"},       {"decay", spec_.decay}, {"count", count_}, {"batches", batches_},
            {"abs_max", abs_max_}, {"min", min_},          {"max", max_}};
  }

  void merge(const Observer&) override {
    throw Unsupported(
        "merge: EMA observers depend on batch order and cannot be merged; calibrate in one pass "
        "or use the max / histogram calibrators");
  }

  void load(const json& j, std::string_view where) {
    check_keys(j, {"kind", "decay", "count", "batches", "abs_max", "min", "max"}, where);
    spec_.decay = get_number(j, "decay", where);
    count_ = get_count(j, where);
    const double b = get_number(j, "batches", where);
    if (b < 0 || b != std::floor(b)) {
      throw ModelFormatError(
          fmt::format("{}: key \"batches\" is {}: expected an integer >= 0", where, b));
    }
    batches_ = static_cast<int64_t>(b);
    abs_max_ = get_number(j, "abs_max", where);
    min_ = get_number(j, "min", where);
    max_ = get_number(j, "max", where);
  }

 private:
  int64_t batches_ = 0;
  double abs_max_ = 0.0, min_ = 0.0, max_ = 0.0;  // double: 1 - 0.9999 loses bits in float
};

class HistogramObserver final : public Observer {
 public:
  explicit HistogramObserver(const CalibratorSpec& spec)
      : Observer(spec), pos_(spec.bins, 0.0), neg_(spec.bins, 0.0) {}

  void observe(std::span<const float> x) override {
    const BatchStats s = batch_stats(x);
    if (x.empty()) return;
    if (count_ == 0) {
      min_ = s.min;
      max_ = s.max;
    } else {
      min_ = std::min(min_, s.min);
      max_ = std::max(max_, s.max);
    }
    grow_to(s.abs_max);
    const int n = spec_.bins;
    const double inv_w = range_ > 0.0 ? n / range_ : 0.0;
    for (float v : x) {
      const double a = std::fabs(static_cast<double>(v));
      const int j = std::min(n - 1, static_cast<int>(a * inv_w));
      (v >= 0.0f ? pos_ : neg_)[j] += 1.0;
    }
    count_ += static_cast<int64_t>(x.size());
  }

  Range range(ThresholdMode mode) const override {
    check_observed();
    const double w = bin_width();
    const double obs_neg = std::max(0.0f, -min_), obs_pos = std::max(0.0f, max_);
    if (w == 0.0) return {0.0f, 0.0f};
    double t_sym = 0.0, t_neg = 0.0, t_pos = 0.0;
    const bool need_sym = mode == ThresholdMode::symmetric;
    switch (spec_.kind) {
      case CalibratorKind::percentile:
        if (need_sym) {
          t_sym = percentile_threshold(folded(), w, spec_.percentile);
        } else {
          // ORT's non-symmetric cut: (100 - p) / 2 percent from each tail of signed x.
          const double tail = (100.0 - spec_.percentile) / 2.0;
          const std::vector<double> sh = signed_hist();
          const double lo = percentile_threshold(sh, w, tail) - range_;
          const double hi = percentile_threshold(sh, w, 100.0 - tail) - range_;
          t_neg = std::max(0.0, -lo);
          t_pos = std::max(0.0, hi);
        }
        break;
      case CalibratorKind::kl:
        if (need_sym) {
          t_sym = spec_.kl_form == KlForm::abs
                      ? kl_threshold_abs(folded(), w, kAbsLevels)
                      : kl_threshold_signed(signed_hist(), w, kSignedLevels);
        } else {
          t_neg = kl_threshold_abs(neg_, w, kAbsLevels);
          t_pos = kl_threshold_abs(pos_, w, kAbsLevels);
        }
        break;
      case CalibratorKind::mse:
        if (need_sym) {
          t_sym = mse_threshold(folded(), w, kMseLevelsPerSide);
        } else {
          t_neg = mse_threshold(neg_, w, kMseLevelsPerSide);
          t_pos = mse_threshold(pos_, w, kMseLevelsPerSide);
        }
        break;
      default:
        break;
    }
    // Thresholds are bin edges; never extend past what was observed (ORT clips likewise).
    t_sym = std::min(t_sym, std::max(obs_neg, obs_pos));
    t_neg = std::min(t_neg, obs_neg);
    t_pos = std::min(t_pos, obs_pos);
    return apply_mode(mode, t_neg, t_pos, t_sym);
  }

  json to_json() const override {
    json j = {{"kind", std::string(to_string(spec_.kind))},
              {"bins", spec_.bins},
              {"count", count_},
              {"min", min_},
              {"max", max_},
              {"range", range_},
              {"positive", pos_},
              {"negative", neg_}};
    if (spec_.kind == CalibratorKind::percentile) j["percentile"] = spec_.percentile;
    if (spec_.kind == CalibratorKind::kl) j["kl_form"] = std::string(to_string(spec_.kl_form));
    return j;
  }

  void merge(const Observer& other) override;

  void load(const json& j, std::string_view where) {
    check_keys(j, {"kind", "bins", "count", "min", "max", "range", "positive", "negative"}, where,
               spec_.kind == CalibratorKind::percentile ? "percentile"
               : spec_.kind == CalibratorKind::kl       ? "kl_form"
                                                        : nullptr);
    count_ = get_count(j, where);
    min_ = static_cast<float>(get_number(j, "min", where));
    max_ = static_cast<float>(get_number(j, "max", where));
    range_ = get_number(j, "range", where);
    if (range_ < 0.0 || min_ > max_) {
      throw ModelFormatError(
          fmt::format("{}: inconsistent range {} / [{}, {}]", where, range_, min_, max_));
    }
    for (const char* key : {"positive", "negative"}) {
      const json& a = require(j, key, where);
      if (!a.is_array() || a.size() != static_cast<std::size_t>(spec_.bins)) {
        throw ModelFormatError(
            fmt::format("{}: key \"{}\" must be an array of {} counts", where, key, spec_.bins));
      }
      std::vector<double>& dst = key[0] == 'p' ? pos_ : neg_;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_number() || !(a[i].get<double>() >= 0.0) ||
            !std::isfinite(a[i].get<double>())) {
          throw ModelFormatError(fmt::format("{}: key \"{}\"[{}] is {}: expected a count >= 0",
                                             where, key, i, a[i].dump()));
        }
        dst[i] = a[i].get<double>();
      }
    }
  }

 private:
  double bin_width() const { return range_ / spec_.bins; }

  std::vector<double> folded() const {
    std::vector<double> f(pos_.size());
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = pos_[i] + neg_[i];
    return f;
  }

  // 2 * bins counts over [-range, range], most negative first.
  std::vector<double> signed_hist() const {
    std::vector<double> s(neg_.rbegin(), neg_.rend());
    s.insert(s.end(), pos_.begin(), pos_.end());
    return s;
  }

  // Doubles the range until it covers `abs_max`, merging adjacent bin pairs (exact re-binning).
  void grow_to(double abs_max) {
    if (abs_max <= range_) return;
    if (range_ == 0.0) {  // only zeros so far, all in bin 0 whatever its width
      range_ = abs_max;
      return;
    }
    const std::size_t n = pos_.size();
    while (range_ < abs_max) {
      range_ *= 2.0;
      for (std::vector<double>* h : {&pos_, &neg_}) {
        std::vector<double>& v = *h;
        for (std::size_t i = 0; i < n / 2; ++i) v[i] = v[2 * i] + v[2 * i + 1];
        if (n % 2) v[n / 2] = v[n - 1];
        std::fill(v.begin() + (n + 1) / 2, v.end(), 0.0);
      }
    }
  }

  // Re-bins `src` (bin width src_w) into `dst` (bin width dst_w >= src_w), splitting each source
  // bin's count in proportion to its overlap with the destination bins.
  static void rebin_add(std::span<const double> src, double src_w, std::vector<double>& dst,
                        double dst_w) {
    const std::size_t n = dst.size();
    for (std::size_t i = 0; i < src.size(); ++i) {
      if (src[i] == 0.0) continue;
      if (src_w == 0.0 || dst_w == 0.0) {
        dst[0] += src[i];
        continue;
      }
      const double a = i * src_w, b = (i + 1) * src_w;
      std::size_t j = std::min<std::size_t>(n - 1, static_cast<std::size_t>(a / dst_w));
      double lo = a;
      while (lo < b) {
        const double edge = j == n - 1 ? b : std::min(b, (j + 1) * dst_w);
        dst[j] += src[i] * (edge - lo) / src_w;
        lo = edge;
        if (j < n - 1) ++j;
      }
    }
  }

  std::vector<double> pos_, neg_;
  double range_ = 0.0;
  float min_ = 0.0f, max_ = 0.0f;
};

void check_mergeable(const Observer& self, const Observer& other) {
  const CalibratorSpec &a = self.spec(), &b = other.spec();
  if (a.kind != b.kind || a.bins != b.bins || a.kl_form != b.kl_form ||
      a.percentile != b.percentile) {
    throw InvalidArgument(fmt::format(
        "merge: observers differ: this is {} with {} bins, the other {} with {} bins: expected "
        "the same calibrator and parameters",
        to_string(a.kind), a.bins, to_string(b.kind), b.bins));
  }
}

void MaxObserver::merge(const Observer& other) {
  check_mergeable(*this, other);
  const auto& o = static_cast<const MaxObserver&>(other);
  if (o.count_ == 0) return;
  min_ = count_ == 0 ? o.min_ : std::min(min_, o.min_);
  max_ = count_ == 0 ? o.max_ : std::max(max_, o.max_);
  count_ += o.count_;
}

void HistogramObserver::merge(const Observer& other) {
  check_mergeable(*this, other);
  const auto& o = static_cast<const HistogramObserver&>(other);
  if (o.count_ == 0) return;
  min_ = count_ == 0 ? o.min_ : std::min(min_, o.min_);
  max_ = count_ == 0 ? o.max_ : std::max(max_, o.max_);
  if (o.range_ <= range_) {
    rebin_add(o.pos_, o.bin_width(), pos_, bin_width());
    rebin_add(o.neg_, o.bin_width(), neg_, bin_width());
  } else {
    std::vector<double> pos(o.pos_), neg(o.neg_);
    rebin_add(pos_, bin_width(), pos, o.bin_width());
    rebin_add(neg_, bin_width(), neg, o.bin_width());
    pos_ = std::move(pos);
    neg_ = std::move(neg);
    range_ = o.range_;
  }
  count_ += o.count_;
}

}  // namespace

std::string_view to_string(CalibratorKind k) {
  switch (k) {
    case CalibratorKind::max:
      return "max";
    case CalibratorKind::ema:
      return "ema";
    case CalibratorKind::percentile:
      return "percentile";
    case CalibratorKind::kl:
      return "kl";
    case CalibratorKind::mse:
      return "mse";
  }
  return "?";
}

std::string_view to_string(KlForm f) { return f == KlForm::abs ? "abs" : "signed"; }

std::string_view to_string(ThresholdMode m) {
  switch (m) {
    case ThresholdMode::symmetric:
      return "symmetric";
    case ThresholdMode::independent:
      return "independent";
    case ThresholdMode::conjugate:
      return "conjugate";
  }
  return "?";
}

void validate(const CalibratorSpec& spec) {
  if (!(spec.decay > 0.0 && spec.decay < 1.0)) {
    throw InvalidArgument(
        fmt::format("calibrator: decay {} out of range: expected (0, 1)", spec.decay));
  }
  if (!(spec.percentile > 50.0 && spec.percentile <= 100.0)) {
    throw InvalidArgument(
        fmt::format("calibrator: percentile {} out of range: expected (50, 100]", spec.percentile));
  }
  if (spec.bins < 128 || spec.bins > kMaxBins) {
    throw InvalidArgument(
        fmt::format("calibrator: bins {} out of range: expected [128, {}]", spec.bins, kMaxBins));
  }
}

void Observer::check_observed() const {
  if (count_ == 0) {
    throw InvalidArgument(fmt::format(
        "{} observer: range requested before any activation was observed", to_string(spec_.kind)));
  }
}

std::unique_ptr<Observer> make_observer(const CalibratorSpec& spec) {
  validate(spec);
  switch (spec.kind) {
    case CalibratorKind::max:
      return std::make_unique<MaxObserver>(spec);
    case CalibratorKind::ema:
      return std::make_unique<EmaObserver>(spec);
    default:
      return std::make_unique<HistogramObserver>(spec);
  }
}

std::unique_ptr<Observer> observer_from_json(const json& j, std::string_view where) {
  if (!j.is_object()) {
    throw ModelFormatError(fmt::format("{}: expected an object, found {}", where, j.type_name()));
  }
  const json& kind = require(j, "kind", where);
  CalibratorSpec spec;
  const std::string k = kind.is_string() ? kind.get<std::string>() : kind.dump();
  if (k == "max") {
    spec.kind = CalibratorKind::max;
  } else if (k == "ema") {
    spec.kind = CalibratorKind::ema;
    spec.decay = get_number(j, "decay", where);
  } else if (k == "percentile" || k == "kl" || k == "mse") {
    spec.kind = k == "percentile" ? CalibratorKind::percentile
                : k == "kl"       ? CalibratorKind::kl
                                  : CalibratorKind::mse;
    const json& bins = require(j, "bins", where);
    if (!bins.is_number_integer()) {
      throw ModelFormatError(
          fmt::format("{}: key \"bins\" is {}: expected an integer", where, bins.dump()));
    }
    spec.bins = bins.get<int>();
    if (spec.kind == CalibratorKind::percentile) {
      spec.percentile = get_number(j, "percentile", where);
    }
    if (spec.kind == CalibratorKind::kl) {
      const json& f = require(j, "kl_form", where);
      if (f != "abs" && f != "signed") {
        throw ModelFormatError(fmt::format(
            "{}: key \"kl_form\" is {}: expected \"abs\" or \"signed\"", where, f.dump()));
      }
      spec.kl_form = f == "abs" ? KlForm::abs : KlForm::signed_;
    }
  } else {
    throw ModelFormatError(fmt::format(
        "{}: key \"kind\" is {}: expected max, ema, percentile, kl or mse", where, kind.dump()));
  }
  try {
    validate(spec);
  } catch (const InvalidArgument& e) {
    throw ModelFormatError(fmt::format("{}: {}", where, e.what()));
  }
  auto obs = make_observer(spec);
  if (auto* m = dynamic_cast<MaxObserver*>(obs.get())) m->load(j, where);
  if (auto* e = dynamic_cast<EmaObserver*>(obs.get())) e->load(j, where);
  if (auto* h = dynamic_cast<HistogramObserver*>(obs.get())) h->load(j, where);
  return obs;
}

double percentile_threshold(std::span<const double> hist, double bin_width, double p) {
  const double total = sum(hist);
  if (total <= 0.0) return 0.0;
  const double target = p / 100.0 * total;
  double cum = 0.0;
  for (std::size_t j = 0; j < hist.size(); ++j) {
    if (hist[j] > 0.0 && cum + hist[j] >= target) {
      const double frac = std::clamp((target - cum) / hist[j], 0.0, 1.0);
      return (static_cast<double>(j) + frac) * bin_width;
    }
    cum += hist[j];
  }
  return static_cast<double>(hist.size()) * bin_width;
}

double smoothed_kl(std::span<const double> p_in, std::span<const double> q_in, double eps) {
  std::vector<double> p(p_in.begin(), p_in.end()), q(q_in.begin(), q_in.end());
  if (p.size() != q.size() || !smooth(p, eps) || !smooth(q, eps)) {
    return std::numeric_limits<double>::infinity();
  }
  const double sp = sum(p), sq = sum(q);
  double kl = 0.0;
  for (std::size_t j = 0; j < p.size(); ++j) {
    const double pj = p[j] / sp;
    kl += pj * std::log(pj / (q[j] / sq));
  }
  return kl;
}

double kl_threshold_abs(std::span<const double> hist, double bin_width, int levels) {
  const int n = static_cast<int>(hist.size());
  if (sum(hist) <= 0.0) return 0.0;
  if (n <= levels) return n * bin_width;
  std::vector<double> p, q;
  double best = std::numeric_limits<double>::infinity();
  int best_i = n;
  double outliers = sum(hist.subspan(levels));
  for (int i = levels; i <= n; ++i) {
    const auto slice = hist.subspan(0, i);
    p.assign(slice.begin(), slice.end());
    p[i - 1] += outliers;
    build_q(slice, p, levels, q);
    const double kl = smoothed_kl(p, q, kKlEpsilon);
    if (kl <= best) {  // ties: the larger threshold
      best = kl;
      best_i = i;
    }
    if (i < n) outliers -= hist[i];
  }
  return best_i * bin_width;
}

double kl_threshold_signed(std::span<const double> signed_hist, double bin_width, int levels) {
  const int half = static_cast<int>(signed_hist.size() / 2);
  if (sum(signed_hist) <= 0.0) return 0.0;
  const int first = (levels + 1) / 2;
  if (half <= first) return half * bin_width;
  std::vector<double> p, q;
  double best = std::numeric_limits<double>::infinity();
  int best_i = half;
  for (int i = first; i <= half; ++i) {
    const auto slice = signed_hist.subspan(half - i, 2 * i);
    p.assign(slice.begin(), slice.end());
    p.front() += sum(signed_hist.subspan(0, half - i));
    p.back() += sum(signed_hist.subspan(half + i));
    build_q(slice, p, levels, q);
    const double kl = smoothed_kl(p, q, kKlEpsilon);
    if (kl <= best) {
      best = kl;
      best_i = i;
    }
  }
  return best_i * bin_width;
}

double mse_threshold(std::span<const double> hist, double bin_width, int levels_per_side) {
  const int n = static_cast<int>(hist.size());
  if (sum(hist) <= 0.0) return 0.0;
  double best = std::numeric_limits<double>::infinity();
  int best_i = n;
  for (int i = 1; i <= n; ++i) {
    const double t = i * bin_width;
    const double inv = levels_per_side / t, step = t / levels_per_side;
    double err = 0.0;
    for (int j = 0; j < n; ++j) {
      if (hist[j] == 0.0) continue;
      const double c = (j + 0.5) * bin_width;
      const double fq = std::min(std::nearbyint(c * inv), double(levels_per_side)) * step;
      err += hist[j] * (c - fq) * (c - fq);
    }
    if (err <= best) {
      best = err;
      best_i = i;
    }
  }
  return best_i * bin_width;
}

}  // namespace octet::quant
