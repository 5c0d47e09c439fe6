// AMX INT8 GEMM (AMX-TILE + AMX-INT8: tdpbssd / tdpbusd), C tiles of 32 x 32, fused epilogues
// s32 / f32 (+GELU/ReLU, residual) / s8 / u8 applied by the AVX-512 epilogue code
// (kernels/avx512/gemm_int8_avx512_impl.h, store_tile) from an int32 scratch block.
//
// Tiles (palette 1, every tile 16 rows x 64 bytes):
//   tmm0..3  C, int32 16 x 16 each: [rows 0-15 | 16-31] x [columns 0-15 | 16-31] of the block
//   tmm4, 5  A, 16 rows x 64 k bytes (rows 0-15 and 16-31), read with the row stride of A
//   tmm6, 7  B, 16 k-groups x [16 columns][4 k]: 16 consecutive groups of one VNNI panel, which
//            are contiguous 1 KiB, so the VNNI packed layout is the AMX B layout (stride 64)
// One K step of 64 costs 4 tile loads and 4 tdp (16 x 16 x 64 MACs each): 2 loads per 2 tdp.
//
// s8 activations: tdpbssd multiplies s8 by s8, so no +128 shift and no column-sum correction.
// u8 activations: tdpbusd (u8 x s8) and the epilogue removes za * colsum[j], as VNNI does.
// A is read in place when its rows are 64-byte aligned, K is a multiple of 64 and the rows fill
// whole tiles; otherwise the block's rows are copied once into the workspace (cost: M x K bytes
// per call against M x N x K MACs).
// Tails: N is padded to 16 columns in packed B and masked in the epilogue. K not a multiple of
// 64: the A copy is zero padded to a multiple of 64; the B tile of the last step then reads up
// to 15 groups past the panel (into the next panel, or into the zeroed guard after the last one)
// and multiplies them by those zeros: exact. M: the copy is zero padded to 16 rows; rows past M
// are computed and never written out.
//
// Pipelining: the tdp instructions of a block and the AVX-512 epilogue of the previous block are
// independent, so the epilogue is issued between the two (double-buffered int32 scratch) and
// the core runs it while the AMX unit computes: at M = 128, K = N = 768, f32 output, 2,290-2,330
// GOP/s -> 2,550 (the same kernel with no epilogue at all: 3,250).
//
// Tile state: LDTILECFG at every call (another library may have configured the tiles
// differently on this thread) and TILERELEASE before returning, so that no tile state stays live
// between calls (the OS then need not save 8 KiB per context switch of this thread).
#include <cstdint>
#include <cstring>

#include "kernels/amx/int8_amx.h"
#include "kernels/avx512/gemm_int8_avx512_impl.h"
#include "kernels/avx512_vnni/int8_avx512_vnni.h"

namespace octet::kernels::amx {
namespace {

constexpr int kTileRows = 16;  // rows of an A or C tile
constexpr int kTileK = 64;     // k bytes of an A tile row (16 groups of 4)
constexpr int kBlockRows = 2 * kTileRows;
constexpr int kBlockCols = 32;
// Blocks with few rows use the VNNI kernel: a 16-row tile computes 16 rows whatever M is. Measured
// (one thread, GOP/s AMX vs VNNI): where packed B stays in L2 (K = N = 768) AMX wins from 4 rows
// (724 vs 597; 1 row: 198 vs 272, 2 rows: 382 vs 452); where B streams from L3 (768 x 3072,
// 3072 x 768) both are bound by B's bandwidth up to 6 rows (341-480 vs 354-525) and AMX wins
// from 8 (647-661 vs 605-633).
constexpr int kMinAmxRows = 8;
constexpr int kMinAmxRowsL2 = 4;
constexpr double kL2ResidentB = 1 << 20;  // bytes of packed B taken to stay in L2
// Bytes the B tile of the last K step may read past the end of packed B: 15 groups of 64.
constexpr std::size_t kPackedBGuard = 1024;
constexpr std::size_t kScratchBytes = kBlockRows * kBlockCols * sizeof(int32_t);

struct alignas(64) TileConfig {
  uint8_t palette_id = 0;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

// Every tile 16 rows x 64 bytes. A constant in memory, not a stack buffer: GCC 12's
// _tile_loadconfig declares an 8-byte memory operand, so stores to a local config before it may
// be dropped as dead.
constexpr TileConfig make_tile_config() {
  TileConfig cfg{};
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = kTileRows;
  }
  return cfg;
}
constexpr TileConfig kTileConfig = make_tile_config();

void load_tile_config() { _tile_loadconfig(&kTileConfig); }

std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }

int padded_k(int k) { return static_cast<int>(round_up(static_cast<std::size_t>(k), kTileK)); }

// Workspace: [two scratch C blocks][A rows packed when they cannot be read in place].
std::size_t amx_workspace_bytes(int rows, int k) {
  const std::size_t a_rows = round_up(static_cast<std::size_t>(rows), kTileRows);
  return 2 * kScratchBytes + round_up(a_rows * static_cast<std::size_t>(padded_k(k)), 64);
}

// Accumulates the MT x NT C tiles of one block over `steps` K steps: tmm0/1 = rows 0-15 x panels
// 0/1, tmm2/3 = rows 16-31. `a`: the block's first row (row stride lda); b0, b1: the two panels.
template <bool U8, int MT, int NT>
void accumulate(const uint8_t* a, std::ptrdiff_t lda, const int8_t* b0, const int8_t* b1,
                int steps) {
  _tile_zero(0);
  if constexpr (NT == 2) _tile_zero(1);
  if constexpr (MT == 2) {
    _tile_zero(2);
    if constexpr (NT == 2) _tile_zero(3);
  }
  const uint8_t* a1 = a + kTileRows * lda;
  for (int s = 0; s < steps; ++s) {
    _tile_loadd(4, a + s * kTileK, lda);
    _tile_loadd(6, b0 + s * 1024, 64);
    if constexpr (NT == 2) _tile_loadd(7, b1 + s * 1024, 64);
    if constexpr (MT == 2) _tile_loadd(5, a1 + s * kTileK, lda);
    if constexpr (U8) {
      _tile_dpbusd(0, 4, 6);
      if constexpr (NT == 2) _tile_dpbusd(1, 4, 7);
      if constexpr (MT == 2) {
        _tile_dpbusd(2, 5, 6);
        if constexpr (NT == 2) _tile_dpbusd(3, 5, 7);
      }
    } else {
      _tile_dpbssd(0, 4, 6);
      if constexpr (NT == 2) _tile_dpbssd(1, 4, 7);
      if constexpr (MT == 2) {
        _tile_dpbssd(2, 5, 6);
        if constexpr (NT == 2) _tile_dpbssd(3, 5, 7);
      }
    }
  }
}

// Stores the C tiles to `c` (32 x 32 int32, row stride 32).
template <int MT, int NT>
void store_c_tiles(int32_t* c) {
  constexpr std::ptrdiff_t ldc = kBlockCols * sizeof(int32_t);
  _tile_stored(0, c, ldc);
  if constexpr (NT == 2) _tile_stored(1, c + 16, ldc);
  if constexpr (MT == 2) {
    _tile_stored(2, c + 16 * kBlockCols, ldc);
    if constexpr (NT == 2) _tile_stored(3, c + 16 * kBlockCols + 16, ldc);
  }
}

template <bool U8>
void accumulate(int mt, int nt, const uint8_t* a, std::ptrdiff_t lda, const int8_t* b0,
                const int8_t* b1, int steps) {
  if (mt == 2) {
    nt == 2 ? accumulate<U8, 2, 2>(a, lda, b0, b1, steps)
            : accumulate<U8, 2, 1>(a, lda, b0, b1, steps);
  } else {
    nt == 2 ? accumulate<U8, 1, 2>(a, lda, b0, b1, steps)
            : accumulate<U8, 1, 1>(a, lda, b0, b1, steps);
  }
}

void store_c_tiles(int mt, int nt, int32_t* c) {
  if (mt == 2) {
    nt == 2 ? store_c_tiles<2, 2>(c) : store_c_tiles<2, 1>(c);
  } else {
    nt == 2 ? store_c_tiles<1, 2>(c) : store_c_tiles<1, 1>(c);
  }
}

// The epilogue of `rows` x (16 * NT) outputs of the scratch block, through the AVX-512 register
// tile epilogue: 8 rows at a time, then single rows.
template <int NT>
void epilogue(avx512_gemm::TileArgs& t, const int32_t* c, int rows) {
  int r = 0;
  for (; r + 8 <= rows; r += 8) {
    __m512i acc[8][NT];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
#pragma GCC unroll 2
      for (int v = 0; v < NT; ++v) {
        acc[i][v] = _mm512_loadu_si512(c + (r + i) * kBlockCols + 16 * v);
      }
    }
    avx512_gemm::store_tile<8, NT>(t, acc);
    t.i0 += 8;
  }
  for (; r < rows; ++r) {
    __m512i acc[1][NT];
#pragma GCC unroll 2
    for (int v = 0; v < NT; ++v) acc[0][v] = _mm512_loadu_si512(c + r * kBlockCols + 16 * v);
    avx512_gemm::store_tile<1, NT>(t, acc);
    t.i0 += 1;
  }
}

// A block whose tiles are computed but whose epilogue has not run yet.
struct PendingBlock {
  const int32_t* c = nullptr;  // its scratch (nullptr: none)
  int rows = 0, nt = 0, i0 = 0, j0 = 0;
  __mmask16 last_mask = 0;
};

void run_epilogue(avx512_gemm::TileArgs& t, const PendingBlock& b) {
  if (b.c == nullptr) return;
  t.i0 = b.i0;
  t.j0 = b.j0;
  t.last_mask = b.last_mask;
  if (b.nt == 2) {
    epilogue<2>(t, b.c, b.rows);
  } else {
    epilogue<1>(t, b.c, b.rows);
  }
}

// Requests a block's output lines (and residual lines) for writing before its tiles are computed,
// so that their read-for-ownership overlaps the tdp instructions instead of stalling the
// epilogue's stores (M x N outputs beyond L2; measured +1 to 2% at M = 128, up to +25% at
// M = 1024, N = 3072 in most runs).
void prefetch_outputs(const GemmParams& p, int i0, int rows, int j0, int nt) {
  const std::ptrdiff_t size = p.output == GemmOutput::s32 || p.output == GemmOutput::f32 ? 4 : 1;
  const char* c = static_cast<const char*>(p.c) + (i0 * p.ldc + j0) * size;
  for (int r = 0; r < rows; ++r) {
    for (int v = 0; v < nt; ++v) {
      _mm_prefetch(c + (r * p.ldc + v * 16) * size, _MM_HINT_ET0);
      if (p.residual) {
        _mm_prefetch(reinterpret_cast<const char*>(p.residual + (i0 + r) * p.ldr + j0 + 16 * v),
                     _MM_HINT_T0);
      }
    }
  }
}

// Copies `rows` rows of `k` bytes (stride lda) into `dst` (stride ld), zero-filling each row to
// ld bytes and the rows up to `rows_total`.
void copy_rows(const uint8_t* src, std::ptrdiff_t lda, int rows, int k, uint8_t* dst,
               std::ptrdiff_t ld, int rows_total) {
  for (int i = 0; i < rows; ++i) {
    std::memcpy(dst + i * ld, src + i * lda, static_cast<std::size_t>(k));
    std::memset(dst + i * ld + k, 0, static_cast<std::size_t>(ld - k));
  }
  if (rows_total > rows) {
    std::memset(dst + rows * ld, 0, static_cast<std::size_t>(rows_total - rows) * ld);
  }
}

template <bool U8>
void gemm_amx(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace) {
  const int rows = m1 - m0;
  int32_t* scratch[2] = {static_cast<int32_t*>(workspace),
                         static_cast<int32_t*>(workspace) + kBlockRows * kBlockCols};
  uint8_t* ws_a = static_cast<uint8_t*>(workspace) + 2 * kScratchBytes;
  const uint8_t* a = static_cast<const uint8_t*>(p.a) + m0 * p.lda;
  std::ptrdiff_t lda = p.lda;
  // A is read in place when every tile row is a whole, aligned 64-byte line (an unaligned row
  // touches two lines per tile row: measured 1.4x slower) and the rows fill whole tiles; else the
  // block's rows are copied once into the workspace, zero padded to 64 k and 16 rows.
  const bool in_place = reinterpret_cast<std::uintptr_t>(a) % 64 == 0 && p.lda % 64 == 0 &&
                        p.k % kTileK == 0 && rows % kTileRows == 0;
  if (!in_place) {
    lda = padded_k(p.k);
    copy_rows(a, p.lda, rows, p.k, ws_a, lda, static_cast<int>(round_up(rows, kTileRows)));
    a = ws_a;
  }
  const int steps = padded_k(p.k) / kTileK;
  const std::ptrdiff_t b_panel = static_cast<std::ptrdiff_t>(p.k + 3) / 4 * 64;
  const int8_t* b = static_cast<const int8_t*>(p.packed_b);

  avx512_gemm::TileArgs t{};
  t.p = &p;
  t.za = U8 ? p.a_zero_point : 0;
  __m512i abs_max = _mm512_setzero_si512();
  t.abs_max = p.output == GemmOutput::f32 && p.abs_max ? &abs_max : nullptr;
  load_tile_config();
  // Software pipeline: the AVX-512 epilogue of the previous block runs while the tdp
  // instructions of this block execute (they are independent), then this block's tiles are
  // stored into the other scratch buffer.
  PendingBlock pending;
  int buffer = 0;
  for (int j = n0; j < n1; j += kBlockCols) {
    const int cols = n1 - j < kBlockCols ? n1 - j : kBlockCols;
    const int nt = (cols + 15) / 16;
    const int8_t* b0 = b + (j / 16) * b_panel;
    for (int r = 0; r < rows; r += kBlockRows) {
      const int block_rows = rows - r < kBlockRows ? rows - r : kBlockRows;
      const int mt = block_rows > kTileRows ? 2 : 1;
      prefetch_outputs(p, m0 + r, block_rows, j, nt);
      accumulate<U8>(mt, nt, a + r * lda, lda, b0, b0 + b_panel, steps);
      run_epilogue(t, pending);
      store_c_tiles(mt, nt, scratch[buffer]);
      pending.c = scratch[buffer];
      pending.rows = block_rows;
      pending.nt = nt;
      pending.i0 = m0 + r;
      pending.j0 = j;
      pending.last_mask = avx512_gemm::column_mask(cols - 16 * (nt - 1));
      buffer ^= 1;
    }
  }
  run_epilogue(t, pending);
  _tile_release();
  if (t.abs_max) avx512_gemm::fold_abs_max(p, abs_max);
}

}  // namespace

std::size_t gemm_packed_b_size(int n, int k) {
  return avx512_vnni::gemm_packed_b_size(n, k) + kPackedBGuard;
}

void gemm_pack_b(const int8_t* b, std::ptrdiff_t ldb, int n, int k, void* packed) {
  avx512_vnni::gemm_pack_b(b, ldb, n, k, packed);
  std::memset(static_cast<uint8_t*>(packed) + avx512_vnni::gemm_packed_b_size(n, k), 0,
              kPackedBGuard);
}

std::size_t gemm_workspace_size(int rows, int k) {
  const std::size_t vnni = avx512_vnni::gemm_workspace_size(rows, k);
  const std::size_t tiles = amx_workspace_bytes(rows, k);
  return vnni > tiles ? vnni : tiles;
}

void gemm(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace) {
  if (m1 <= m0 || n1 <= n0) return;
  const bool b_in_l2 = static_cast<double>(p.n) * p.k <= kL2ResidentB;
  if (m1 - m0 < (b_in_l2 ? kMinAmxRowsL2 : kMinAmxRows)) {
    avx512_vnni::gemm(p, m0, m1, n0, n1, workspace);
    return;
  }
  if (p.a_dtype == ActDtype::u8) {
    gemm_amx<true>(p, m0, m1, n0, n1, workspace);
  } else {
    gemm_amx<false>(p, m0, m1, n0, n1, workspace);
  }
}

}  // namespace octet::kernels::amx
