#include "ops/matmul_f32.h"

#include <cstring>
#include <unordered_map>
#include <vector>

#include "common/check.h"

namespace octet::ops {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct MatmulF32::Cache {
  struct Entry {
    dnnl::matmul primitive;
    std::size_t scratchpad_bytes = 0;
  };
  std::mutex mu;
  std::map<std::pair<int64_t, bool>, Entry> primitives;
};

namespace {

constexpr std::size_t kMaxCachedPrimitives = 64;

dnnl::matmul::primitive_desc make_pd(int64_t m, int64_t n, int64_t k, bool has_bias,
                                     const memory::desc& weights_md, bool accumulate) {
  const memory::desc src({m, k}, dt::f32, tag::ab);
  const memory::desc dst({m, n}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (accumulate) {
    dnnl::post_ops po;
    po.append_sum(1.0f);
    attr.set_post_ops(po);
  }
  if (has_bias) {
    const memory::desc bias({1, n}, dt::f32, tag::ab);
    return {dnnl::matmul::desc(src, weights_md, bias, dst), attr, cpu_engine()};
  }
  return {dnnl::matmul::desc(src, weights_md, dst), attr, cpu_engine()};
}

}  // namespace

MatmulF32::MatmulF32(std::span<const float> weight_nk, int64_t n, int64_t k,
                     std::span<const float> bias)
    : n_(n), k_(k), has_bias_(!bias.empty()), cache_(std::make_unique<Cache>()) {
  OCTET_CHECK_EQ(weight_nk.size(), static_cast<std::size_t>(n * k));
  OCTET_CHECK(bias.empty() || bias.size() == static_cast<std::size_t>(n));
  // PyTorch's [N, K] row-major weight is the (K, N) matrix oneDNN wants, in layout "ba".
  const memory::desc user_md({k, n}, dt::f32, tag::ba);
  const memory::desc any_md({k, n}, dt::f32, tag::any);
  weights_md_ = make_pd(128, n, k, has_bias_, any_md, false).weights_desc();
  weights_ = memory(weights_md_, cpu_engine());
  memory user(user_md, cpu_engine(), const_cast<float*>(weight_nk.data()));
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(user, weights_).execute(stream, user, weights_);
  stream.wait();
  if (has_bias_) {
    bias_ = memory({{1, n}, dt::f32, tag::ab}, cpu_engine());
    std::memcpy(bias_.get_data_handle(), bias.data(), bias.size_bytes());
  }
}

MatmulF32::MatmulF32() = default;
MatmulF32::MatmulF32(MatmulF32&&) noexcept = default;
MatmulF32& MatmulF32::operator=(MatmulF32&&) noexcept = default;
MatmulF32::~MatmulF32() = default;

void MatmulF32::run(const float* x, int64_t m, float* y, bool accumulate,
                    AlignedBuffer<std::byte>& scratch) const {
  OCTET_CHECK(m >= 1 && cache_ != nullptr);
  Cache::Entry entry;
  {
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto it = cache_->primitives.find({m, accumulate});
    if (it == cache_->primitives.end()) {
      // Packed batches give many distinct M; bound the cache (oneDNN keeps its own LRU cache of
      // the generated kernels, so re-creating an evicted primitive is cheap).
      if (cache_->primitives.size() >= kMaxCachedPrimitives) cache_->primitives.clear();
      const auto pd = make_pd(m, n_, k_, has_bias_, weights_md_, accumulate);
      it = cache_->primitives
               .emplace(std::make_pair(m, accumulate),
                        Cache::Entry{dnnl::matmul(pd), pd.scratchpad_desc().get_size()})
               .first;
    }
    entry = it->second;
  }
  memory src({{m, k_}, dt::f32, tag::ab}, cpu_engine(), const_cast<float*>(x));
  memory dst({{m, n_}, dt::f32, tag::ab}, cpu_engine(), y);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}};
  if (has_bias_) args.emplace(DNNL_ARG_BIAS, bias_);
  if (entry.scratchpad_bytes > 0) {
    scratch.ensure(entry.scratchpad_bytes);
    const memory::desc md({static_cast<int64_t>(entry.scratchpad_bytes)}, dt::u8, tag::a);
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(md, cpu_engine(), scratch.data()));
  }
  dnnl::stream stream(cpu_engine());
  entry.primitive.execute(stream, args);
  stream.wait();
}

}  // namespace octet::ops
