// WordPiece tokenizer: Hugging Face BertTokenizer's BasicTokenizer + WordpieceTokenizer in one
// pass over the input, with byte offsets.
//
// Hugging Face runs, on the whole text: clean (drop U+0000, U+FFFD and category C*, map
// whitespace to ' '), space out CJK ideographs, NFC, split on whitespace; then per whitespace
// token: lower() (Python's full lower-casing, Final_Sigma included), strip accents (NFD, drop Mn),
// split punctuation; then WordPiece per word. Every step before the whitespace split is
// per-character or cannot cross a space, so this file splits the original text into chunks
// first (runs of non-space characters, or one CJK ideograph), then normalizes each chunk with a
// source byte range attached to every normalized code point, then splits punctuation and runs
// WordPiece on each word. A chunk of pure ASCII skips the Unicode machinery entirely.
#include "text/wordpiece.h"

#include <fmt/format.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "octet/error.h"
#include "text/utf8.h"

namespace octet::text {
namespace {

// ---- Vocabulary hash table ----------------------------------------------------------------

// Multiply-xorshift over 8-byte words: token strings are short, and this hashes a substring
// without copying it, which is what WordPiece's longest-match loop does most.
inline uint64_t hash_bytes(std::string_view s) {
  const char* p = s.data();
  std::size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v) * 0x94D049BB133111EBull;
  }
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  return h;
}

// Open addressing with linear probing over 8-byte slots (32 hash bits and an id): the BERT
// vocabulary's table is 512 KiB and stays in L2, where 32-byte slots holding string_views missed
// it on most probes. Keys are not stored: a slot's key is the vocabulary entry of its id minus
// `prefix` bytes ("##" for the continuation table), compared only when the hash bits match.
// A key inserted twice takes the later id (Hugging Face's dict assignment in load_vocab).
class TokenMap {
 public:
  // `arena` and `spans` (id -> offset, length in arena) must outlive the map and not move.
  void init(const char* arena, const std::pair<uint32_t, uint32_t>* spans, uint32_t prefix,
            std::size_t capacity_for) {
    arena_ = arena;
    spans_ = spans;
    prefix_ = prefix;
    std::size_t cap = 16;
    while (cap < capacity_for * 2) cap <<= 1;
    slots_.assign(cap, Slot{0, -1});
    mask_ = cap - 1;
  }

  void insert(int32_t id) {
    std::string_view k = key(id);
    uint64_t h = hash_bytes(k);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        s = Slot{tag, id};
        max_len_ = std::max(max_len_, k.size());
        return;
      }
      if (s.tag == tag && key(s.id) == k) {
        s.id = id;
        return;
      }
    }
  }

  int32_t find(std::string_view k) const {
    if (k.size() > max_len_) return -1;
    uint64_t h = hash_bytes(k);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == tag && key(s.id) == k) return s.id;
    }
  }

  std::size_t max_len() const { return max_len_; }

 private:
  struct Slot {
    uint32_t tag;
    int32_t id;  // -1: empty
  };

  std::string_view key(int32_t id) const {
    const auto& [offset, length] = spans_[id];
    return std::string_view(arena_ + offset + prefix_, length - prefix_);
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t max_len_ = 0;
  const char* arena_ = nullptr;
  const std::pair<uint32_t, uint32_t>* spans_ = nullptr;
  uint32_t prefix_ = 0;
};

// ---- Character classes (Hugging Face's _is_control, _is_whitespace, _is_punctuation) --------

enum class CharClass : uint8_t {
  kDrop,   // U+0000, U+FFFD, control/format/unassigned/private-use/surrogate: removed
  kSpace,  // separates chunks
  kCjk,    // a chunk of its own (tokenize_chinese_chars)
  kPunct,  // a word of its own
  kOther,
};

// The CJK Unified Ideographs blocks Hugging Face's _is_chinese_char lists (not Hangul, Kana).
constexpr bool is_cjk(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// All non-alphanumeric printable ASCII counts as punctuation, including $ + < = > ^ ` | ~,
// which Unicode files under symbols.
constexpr bool is_ascii_punct(char32_t cp) {
  return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
         (cp >= 123 && cp <= 126);
}

constexpr std::array<CharClass, 128> make_ascii_classes() {
  std::array<CharClass, 128> t{};
  for (char32_t c = 0; c < 128; ++c) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      t[c] = CharClass::kSpace;
    } else if (c < 32 || c == 127) {
      t[c] = CharClass::kDrop;
    } else if (is_ascii_punct(c)) {
      t[c] = CharClass::kPunct;
    } else {
      t[c] = CharClass::kOther;
    }
  }
  return t;
}
constexpr std::array<CharClass, 128> kAsciiClass = make_ascii_classes();

// Class of a character of the original text (before normalization).
CharClass classify_source(char32_t cp, bool cjk) {
  if (cp < 128) return kAsciiClass[cp];
  if (cp == 0xFFFD) return CharClass::kDrop;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CS:
      return CharClass::kDrop;
    case UTF8PROC_CATEGORY_ZS:
      return CharClass::kSpace;
    // Not whitespace to _is_whitespace, but Python's str.split() splits on them.
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
      return CharClass::kSpace;
    default:
      break;
  }
  if (cjk && is_cjk(cp)) return CharClass::kCjk;
  return CharClass::kOther;
}

// After normalization only punctuation and (defensively) separators matter.
bool is_punct_normalized(char32_t cp) {
  if (cp < 128) return is_ascii_punct(cp);
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_space_normalized(char32_t cp) {
  if (cp < 128) return kAsciiClass[cp] == CharClass::kSpace;
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// ---- Normalization with source ranges --------------------------------------------------------

// A normalized code point and the byte range of the original character(s) it came from.
struct NChar {
  char32_t cp;
  uint32_t begin;
  uint32_t end;
};

int combining_class(char32_t cp) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class;
}

// Unicode canonical ordering: stable sort of each run of non-starters by combining class,
// carrying the source ranges along.
void canonical_order(std::vector<NChar>& s) {
  for (std::size_t i = 1; i < s.size(); ++i) {
    int cc = combining_class(s[i].cp);
    if (cc == 0) continue;
    std::size_t j = i;
    NChar c = s[i];
    while (j > 0) {
      int pc = combining_class(s[j - 1].cp);
      if (pc <= cc) break;  // pc == 0 (a starter) also stops the run
      s[j] = s[j - 1];
      --j;
    }
    s[j] = c;
  }
}

// Canonical decomposition of every character, then canonical ordering (NFD).
void decompose(const std::vector<NChar>& in, std::vector<NChar>& out) {
  out.clear();
  utf8proc_int32_t buf[32];
  for (const NChar& c : in) {
    if (c.cp < 0xC0) {
      out.push_back(c);
      continue;
    }
    auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c.cp), buf, 32,
                                     UTF8PROC_DECOMPOSE, nullptr);
    if (n <= 0 || n > 32) {
      out.push_back(c);
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) {
      out.push_back(NChar{static_cast<char32_t>(buf[k]), c.begin, c.end});
    }
  }
  canonical_order(out);
}

// NFC of `in` into `out`. Characters that composition leaves alone keep their own ranges; when
// characters merge or change, the outputs of a cluster (a starter and the non-starters after it)
// share the cluster's range. If composition crosses clusters (conjoining Hangul jamo, a few
// Indic vowel pairs) the whole chunk's range is used for that chunk.
class NfcNormalizer {
 public:
  void run(const std::vector<NChar>& in, std::vector<NChar>& out) {
    out.clear();
    // Below U+0300 every character is NFC-stable and none combines with what precedes it.
    bool simple = std::all_of(in.begin(), in.end(), [](const NChar& c) { return c.cp < 0x300; });
    if (simple) {
      out = in;
      return;
    }
    compose(in, 0, in.size(), whole_);
    if (same_cps(in, 0, in.size(), whole_)) {
      out = in;
      return;
    }
    // Cluster boundaries: characters whose decomposition begins with a starter.
    std::size_t start = 0;
    std::vector<NChar>& result = out;
    for (std::size_t i = 1; i <= in.size(); ++i) {
      if (i < in.size() && !starts_with_starter(in[i].cp)) continue;
      compose(in, start, i, part_);
      if (same_cps(in, start, i, part_)) {
        result.insert(result.end(), in.begin() + static_cast<std::ptrdiff_t>(start),
                      in.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        uint32_t b = in[start].begin, e = in[i - 1].end;
        for (const NChar& c : part_) result.push_back(NChar{c.cp, b, e});
      }
      start = i;
    }
    bool agrees = result.size() == whole_.size();
    for (std::size_t k = 0; agrees && k < result.size(); ++k) {
      agrees = result[k].cp == whole_[k].cp;
    }
    if (!agrees) {
      uint32_t b = in.front().begin, e = in.back().end;
      result.clear();
      for (const NChar& c : whole_) result.push_back(NChar{c.cp, b, e});
    }
  }

 private:
  static bool starts_with_starter(char32_t cp) {
    utf8proc_int32_t buf[32];
    auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf, 32, UTF8PROC_DECOMPOSE,
                                     nullptr);
    char32_t first = n > 0 ? static_cast<char32_t>(buf[0]) : cp;
    return combining_class(first) == 0;
  }

  static bool same_cps(const std::vector<NChar>& in, std::size_t b, std::size_t e,
                       const std::vector<NChar>& composed) {
    if (composed.size() != e - b) return false;
    for (std::size_t k = 0; k < composed.size(); ++k) {
      if (composed[k].cp != in[b + k].cp) return false;
    }
    return true;
  }

  // NFC of in[b, e) into out; ranges in `out` are not meaningful.
  void compose(const std::vector<NChar>& in, std::size_t b, std::size_t e,
               std::vector<NChar>& out) {
    slice_.assign(in.begin() + static_cast<std::ptrdiff_t>(b),
                  in.begin() + static_cast<std::ptrdiff_t>(e));
    decompose(slice_, decomposed_);
    cps_.resize(decomposed_.size());
    for (std::size_t k = 0; k < decomposed_.size(); ++k) {
      cps_[k] = static_cast<utf8proc_int32_t>(decomposed_[k].cp);
    }
    auto n = utf8proc_normalize_utf32(
        cps_.data(), static_cast<utf8proc_ssize_t>(cps_.size()),
        static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
    out.clear();
    for (utf8proc_ssize_t k = 0; k < n; ++k) out.push_back(NChar{char32_t(cps_[k]), 0, 0});
  }

  std::vector<NChar> whole_, part_, slice_, decomposed_;
  std::vector<utf8proc_int32_t> cps_;
};

// Python's _PyUnicode_IsCased approximated from utf8proc: letters with a case, plus characters
// that have a case mapping (Other_Lowercase / Other_Uppercase such as circled letters).
bool is_cased(char32_t cp) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT) {
    return true;
  }
  auto c = static_cast<utf8proc_int32_t>(cp);
  return utf8proc_tolower(c) != c || utf8proc_toupper(c) != c;
}

// Unicode Case_Ignorable: Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter / MidNumLet /
// Single_Quote (listed below).
constexpr char32_t kCaseIgnorablePunct[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,
                                            0x5F4,  0x2018, 0x2019, 0x2024, 0x2027, 0xFE13,
                                            0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};

bool is_case_ignorable(char32_t cp) {
  if (std::find(std::begin(kCaseIgnorablePunct), std::end(kCaseIgnorablePunct), cp) !=
      std::end(kCaseIgnorablePunct)) {
    return true;
  }
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME ||
         cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK;
}

// Python's str.lower() on a whitespace token: simple lower-case mappings, the one unconditional
// multi-character mapping (U+0130 -> "i\u0307"), and Greek capital sigma -> final sigma at the
// end of a word (the Final_Sigma context, evaluated over the whole token).
void lower_case(const std::vector<NChar>& in, std::vector<NChar>& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const NChar& c = in[i];
    if (c.cp < 128) {
      char32_t l = (c.cp >= 'A' && c.cp <= 'Z') ? c.cp + 32 : c.cp;
      out.push_back(NChar{l, c.begin, c.end});
    } else if (c.cp == 0x130) {
      out.push_back(NChar{'i', c.begin, c.end});
      out.push_back(NChar{0x307, c.begin, c.end});
    } else if (c.cp == 0x3A3) {
      std::size_t j = i;
      while (j > 0 && is_case_ignorable(in[j - 1].cp)) --j;
      bool final_sigma = j > 0 && is_cased(in[j - 1].cp);
      if (final_sigma) {
        std::size_t k = i + 1;
        while (k < in.size() && is_case_ignorable(in[k].cp)) ++k;
        final_sigma = k == in.size() || !is_cased(in[k].cp);
      }
      out.push_back(NChar{final_sigma ? char32_t{0x3C2} : char32_t{0x3C3}, c.begin, c.end});
    } else {
      auto l = utf8proc_tolower(static_cast<utf8proc_int32_t>(c.cp));
      out.push_back(NChar{static_cast<char32_t>(l), c.begin, c.end});
    }
  }
}

// NFD, then drop nonspacing marks (Mn).
void strip_accents(const std::vector<NChar>& in, std::vector<NChar>& tmp, std::vector<NChar>& out) {
  decompose(in, tmp);
  out.clear();
  for (const NChar& c : tmp) {
    if (c.cp >= 0x300 &&
        utf8proc_category(static_cast<utf8proc_int32_t>(c.cp)) == UTF8PROC_CATEGORY_MN) {
      continue;
    }
    out.push_back(c);
  }
}

}  // namespace

// ---- Tokenizer state -------------------------------------------------------------------------

struct WordPieceTokenizer::Impl {
  TokenizerOptions options;
  bool strip = true;
  std::string source;                                // the vocabulary file, for messages
  std::string arena;                                 // all tokens, back to back
  std::vector<std::pair<uint32_t, uint32_t>> spans;  // id -> (offset, length) in arena
  TokenMap initial;       // every token, looked up at the start of a word
  TokenMap continuation;  // tokens that begin with "##", stored without it
  int32_t cls = -1, sep = -1, pad = -1, unk = -1, mask = -1;

  std::string_view token(int32_t id) const {
    return std::string_view(arena).substr(spans[id].first, spans[id].second);
  }

  // Working memory, one per thread and reused across calls, so that the hot loop never
  // allocates per character.
  struct Scratch {
    std::vector<NChar> chunk, a, b, c, d;
    NfcNormalizer nfc;
    std::string word;
    std::vector<uint32_t> pos;  // byte offset in `word` of each code point, plus the end
  };

  // Runs BasicTokenizer over `text` and calls on_word(s, const NChar* word, std::size_t n) for
  // every word (after punctuation splitting), in order.
  template <typename OnWord>
  void basic(std::string_view text, OnWord&& on_word) const;
  template <typename OnWord>
  void process_chunk(Scratch& s, bool ascii, OnWord& on_word) const;
  void word_piece(Scratch& s, const NChar* w, std::size_t n, std::vector<Token>& out) const;
};

template <typename OnWord>
void WordPieceTokenizer::Impl::basic(std::string_view text, OnWord&& on_word) const {
  check_utf8(text, "tokenizer input");
  if (text.size() > UINT32_MAX) {
    throw InvalidArgument(fmt::format("tokenizer input of {} bytes is too long (at most {})",
                                      text.size(), UINT32_MAX));
  }
  // One scratch per thread, reused across calls: tokenizing a short sentence then allocates
  // nothing but its result.
  thread_local Scratch s;
  s.chunk.clear();
  bool ascii = true;
  const bool cjk = options.tokenize_chinese_chars;
  auto flush = [&] {
    if (!s.chunk.empty()) process_chunk(s, ascii, on_word);
    s.chunk.clear();
    ascii = true;
  };
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t begin = i;
    char32_t cp;
    auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      cp = byte;
      ++i;
    } else {
      cp = decode_utf8(text, i);
    }
    switch (classify_source(cp, cjk)) {
      case CharClass::kDrop:
        break;
      case CharClass::kSpace:
        flush();
        break;
      case CharClass::kCjk:
        flush();
        s.chunk.push_back(NChar{cp, uint32_t(begin), uint32_t(i)});
        ascii = false;
        flush();
        break;
      case CharClass::kPunct:
      case CharClass::kOther:
        s.chunk.push_back(NChar{cp, uint32_t(begin), uint32_t(i)});
        ascii = ascii && cp < 0x80;
        break;
    }
  }
  flush();
}

template <typename OnWord>
void WordPieceTokenizer::Impl::process_chunk(Scratch& s, bool ascii, OnWord& on_word) const {
  std::vector<NChar>* cur = &s.chunk;
  if (ascii) {
    if (options.lower_case) {
      for (NChar& c : s.chunk) {
        if (c.cp >= 'A' && c.cp <= 'Z') c.cp += 32;
      }
    }
  } else {
    if (!strip) {
      // With accents stripped, NFD(lower(NFC(x))) == NFD(lower(x)): NFC only matters when
      // accents are kept.
      s.nfc.run(*cur, s.a);
      cur = &s.a;
    }
    if (options.lower_case) {
      lower_case(*cur, s.b);
      cur = &s.b;
    }
    if (strip) {
      strip_accents(*cur, s.c, s.d);
      cur = &s.d;
    }
  }
  // Punctuation splitting: every punctuation character is a word of its own.
  const std::vector<NChar>& cs = *cur;
  std::size_t word_begin = 0;
  for (std::size_t k = 0; k < cs.size(); ++k) {
    char32_t cp = cs[k].cp;
    bool punct = ascii ? kAsciiClass[cp] == CharClass::kPunct : is_punct_normalized(cp);
    bool space = !ascii && !punct && is_space_normalized(cp);
    if (punct || space) {
      if (k > word_begin) on_word(s, &cs[word_begin], k - word_begin);
      if (punct) on_word(s, &cs[k], 1);
      word_begin = k + 1;
    }
  }
  if (cs.size() > word_begin) on_word(s, &cs[word_begin], cs.size() - word_begin);
}

// Greedy longest-match-first over the word's code points; "##" marks a piece that does not
// start the word. A word with a piece that matches nothing, or longer than
// max_input_chars_per_word code points, becomes one [UNK] covering the whole word.
void WordPieceTokenizer::Impl::word_piece(Scratch& s, const NChar* w, std::size_t n,
                                          std::vector<Token>& out) const {
  uint32_t word_lo = UINT32_MAX, word_hi = 0;
  for (std::size_t k = 0; k < n; ++k) {
    word_lo = std::min(word_lo, w[k].begin);
    word_hi = std::max(word_hi, w[k].end);
  }
  if (n > options.max_input_chars_per_word) {
    out.push_back(Token{unk, word_lo, word_hi});
    return;
  }
  s.word.clear();
  s.pos.clear();
  for (std::size_t k = 0; k < n; ++k) {
    s.pos.push_back(static_cast<uint32_t>(s.word.size()));
    if (w[k].cp < 0x80) {
      s.word.push_back(static_cast<char>(w[k].cp));
    } else {
      append_utf8(s.word, w[k].cp);
    }
  }
  s.pos.push_back(static_cast<uint32_t>(s.word.size()));

  const std::size_t first_out = out.size();
  const std::string_view word(s.word);
  std::size_t start = 0;
  while (start < n) {
    const TokenMap& map = start == 0 ? initial : continuation;
    const std::size_t limit = map.max_len();
    std::size_t end = n;
    while (end > start && s.pos[end] - s.pos[start] > limit) --end;
    int32_t id = -1;
    for (; end > start; --end) {
      id = map.find(word.substr(s.pos[start], s.pos[end] - s.pos[start]));
      if (id >= 0) break;
    }
    if (id < 0) {
      out.resize(first_out);
      out.push_back(Token{unk, word_lo, word_hi});
      return;
    }
    uint32_t lo = UINT32_MAX, hi = 0;
    for (std::size_t k = start; k < end; ++k) {
      lo = std::min(lo, w[k].begin);
      hi = std::max(hi, w[k].end);
    }
    out.push_back(Token{id, lo, hi});
    start = end;
  }
}

// ---- Loading ---------------------------------------------------------------------------------

namespace {

std::size_t line_of_offset(std::string_view data, std::size_t offset) {
  std::size_t line = 1;
  for (std::size_t k = 0; k < offset && k < data.size(); ++k) {
    if (data[k] == '\n' || (data[k] == '\r' && (k + 1 >= data.size() || data[k + 1] != '\n'))) {
      ++line;
    }
  }
  return line;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WordPieceTokenizer::WordPieceTokenizer(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer& WordPieceTokenizer::operator=(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer::~WordPieceTokenizer() = default;

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::filesystem::path& vocab_txt,
                                                       TokenizerOptions options) {
  const std::string file = vocab_txt.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(vocab_txt, ec)) {
    throw ModelFormatError(
        fmt::format("vocabulary file {} is missing or not a regular file (expected a "
                    "WordPiece vocab.txt with one token per line)",
                    file));
  }
  if (options.max_input_chars_per_word == 0) {
    throw InvalidArgument("TokenizerOptions.max_input_chars_per_word must be at least 1");
  }
  std::ifstream in(vocab_txt, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open vocabulary file {}", file));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError(fmt::format("error reading vocabulary file {}", file));
  if (data.empty()) {
    throw ModelFormatError(
        fmt::format("vocabulary file {} is empty (expected one token per "
                    "line, with [CLS], [SEP], [UNK] and [PAD])",
                    file));
  }
  if (data.size() > UINT32_MAX) {
    throw ModelFormatError(fmt::format("vocabulary file {} is {} bytes (at most {} supported)",
                                       file, data.size(), UINT32_MAX));
  }
  if (std::size_t bad = find_invalid_utf8(data); bad != std::string::npos) {
    throw ModelFormatError(
        fmt::format("vocabulary file {} line {} (byte {}): invalid UTF-8 byte "
                    "0x{:02x} (expected UTF-8 text)",
                    file, line_of_offset(data, bad), bad, static_cast<unsigned char>(data[bad])));
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->strip = options.strip_accents.value_or(options.lower_case);
  impl->source = file;
  // Lines end at "\n", "\r\n" or "\r" (Python's universal newlines); a final terminator does
  // not start another line.
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  std::size_t i = 0;
  while (i < data.size()) {
    std::size_t j = i;
    while (j < data.size() && data[j] != '\n' && data[j] != '\r') ++j;
    spans.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(j - i));
    if (j < data.size() && data[j] == '\r' && j + 1 < data.size() && data[j + 1] == '\n') ++j;
    i = j + 1;
  }
  if (spans.size() > static_cast<std::size_t>(INT32_MAX)) {
    throw ModelFormatError(
        fmt::format("vocabulary file {} has {} lines (at most {})", file, spans.size(), INT32_MAX));
  }
  impl->arena = std::move(data);
  impl->spans = std::move(spans);
  const std::size_t n = impl->spans.size();
  std::size_t continuations = 0;
  for (std::size_t id = 0; id < n; ++id) {
    continuations += impl->token(static_cast<int32_t>(id)).starts_with("##");
  }
  impl->initial.init(impl->arena.data(), impl->spans.data(), 0, n);
  impl->continuation.init(impl->arena.data(), impl->spans.data(), 2, continuations);
  for (std::size_t id = 0; id < n; ++id) {
    std::string_view tok = impl->token(static_cast<int32_t>(id));
    impl->initial.insert(static_cast<int32_t>(id));
    if (tok.size() > 2 && tok.starts_with("##")) {
      impl->continuation.insert(static_cast<int32_t>(id));
    }
  }
  auto special = [&](std::string_view name, bool required) {
    int32_t id = impl->initial.find(name);
    if (id < 0 && required) {
      throw ModelFormatError(
          fmt::format("vocabulary file {} has no {} token (searched all {} "
                      "lines; expected a BERT WordPiece vocabulary)",
                      file, name, n));
    }
    return id;
  };
  impl->cls = special("[CLS]", true);
  impl->sep = special("[SEP]", true);
  impl->unk = special("[UNK]", true);
  impl->pad = special("[PAD]", true);
  impl->mask = special("[MASK]", false);
  return WordPieceTokenizer(std::move(impl));
}

WordPieceTokenizer WordPieceTokenizer::from_model_dir(const std::filesystem::path& dir) {
  TokenizerOptions options;
  const auto config = dir / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config, ec)) {
    std::ifstream in(config, std::ios::binary);
    if (!in) throw IoError(fmt::format("cannot open {}", config.string()));
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::parse_error& e) {
      throw ModelFormatError(
          fmt::format("{}: invalid JSON at byte {}: {}", config.string(), e.byte, e.what()));
    }
    if (!j.is_object()) {
      throw ModelFormatError(fmt::format("{}: expected a JSON object at the top level, found {}",
                                         config.string(), j.type_name()));
    }
    auto read_bool = [&](const char* key, bool& dst) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) return false;
      if (!it->is_boolean()) {
        throw ModelFormatError(fmt::format("{}: \"{}\" must be true or false, found {} ({})",
                                           config.string(), key, it->dump(), it->type_name()));
      }
      dst = it->get<bool>();
      return true;
    };
    read_bool("do_lower_case", options.lower_case);
    bool strip = false;
    if (read_bool("strip_accents", strip)) options.strip_accents = strip;
    read_bool("tokenize_chinese_chars", options.tokenize_chinese_chars);
  }
  return from_vocab_file(dir / "vocab.txt", options);
}

// ---- Public methods --------------------------------------------------------------------------

std::vector<WordPieceTokenizer::Token> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<Token> out;
  out.reserve(text.size() / 4 + 4);
  impl_->basic(text, [&](Impl::Scratch& s, const NChar* w, std::size_t n) {
    impl_->word_piece(s, w, n, out);
  });
  return out;
}

namespace {
// Per-thread token lists of encode / encode_pair, reused across calls.
struct EncodeScratch {
  std::vector<WordPieceTokenizer::Token> a, b;
};
EncodeScratch& encode_scratch() {
  thread_local EncodeScratch s;
  return s;
}
}  // namespace

std::vector<std::string> WordPieceTokenizer::basic_tokenize(std::string_view text) const {
  std::vector<std::string> words;
  impl_->basic(text, [&](Impl::Scratch&, const NChar* w, std::size_t n) {
    std::string word;
    for (std::size_t k = 0; k < n; ++k) append_utf8(word, w[k].cp);
    words.push_back(std::move(word));
  });
  return words;
}

Encoding WordPieceTokenizer::encode(std::string_view text_a, std::size_t max_length) const {
  Encoding e;
  encode(text_a, max_length, e);
  return e;
}

Encoding WordPieceTokenizer::encode_pair(std::string_view text_a, std::string_view text_b,
                                         std::size_t max_length) const {
  Encoding e;
  encode_pair(text_a, text_b, max_length, e);
  return e;
}

namespace {
void clear(Encoding& e) {
  e.input_ids.clear();
  e.token_type_ids.clear();
  e.offsets.clear();
  e.segment.clear();
}
void push(Encoding& e, int32_t id, int32_t type, std::size_t begin, std::size_t end, int8_t seg) {
  e.input_ids.push_back(id);
  e.token_type_ids.push_back(type);
  e.offsets.emplace_back(begin, end);
  e.segment.push_back(seg);
}
}  // namespace

void WordPieceTokenizer::encode(std::string_view text_a, std::size_t max_length,
                                Encoding& e) const {
  if (max_length < 2) {
    throw InvalidArgument(
        fmt::format("encode: max_length {} cannot hold [CLS] and [SEP] "
                    "(expected at least 2)",
                    max_length));
  }
  std::vector<Token>& a = encode_scratch().a;
  a.clear();
  impl_->basic(text_a, [&](Impl::Scratch& s, const NChar* w, std::size_t n) {
    impl_->word_piece(s, w, n, a);
  });
  clear(e);
  e.untruncated_size = a.size() + 2;
  const std::size_t la = std::min(a.size(), max_length - 2);
  push(e, impl_->cls, 0, 0, 0, -1);
  for (std::size_t k = 0; k < la; ++k) push(e, a[k].id, 0, a[k].begin, a[k].end, 0);
  push(e, impl_->sep, 0, 0, 0, -1);
}

void WordPieceTokenizer::encode_pair(std::string_view text_a, std::string_view text_b,
                                     std::size_t max_length, Encoding& e) const {
  if (max_length < 3) {
    throw InvalidArgument(
        fmt::format("encode_pair: max_length {} cannot hold [CLS], [SEP] and "
                    "[SEP] (expected at least 3)",
                    max_length));
  }
  EncodeScratch& scratch = encode_scratch();
  std::vector<Token>& a = scratch.a;
  std::vector<Token>& b = scratch.b;
  a.clear();
  b.clear();
  impl_->basic(text_a, [&](Impl::Scratch& s, const NChar* w, std::size_t n) {
    impl_->word_piece(s, w, n, a);
  });
  impl_->basic(text_b, [&](Impl::Scratch& s, const NChar* w, std::size_t n) {
    impl_->word_piece(s, w, n, b);
  });
  // Hugging Face removes one token at a time from the longer sequence, from b on a tie; the
  // closed form below gives the same lengths.
  const std::size_t budget = max_length - 3;
  std::size_t la = a.size(), lb = b.size();
  if (la + lb > budget) {
    std::size_t remove = la + lb - budget;
    std::size_t diff = la > lb ? la - lb : lb - la;
    std::size_t first = std::min(remove, diff);  // from the longer one until they are equal
    if (la > lb)
      la -= first;
    else
      lb -= first;
    remove -= first;
    // Equal now: b loses the first of each pair of removals.
    lb -= (remove + 1) / 2;
    la -= remove / 2;
  }
  clear(e);
  e.untruncated_size = a.size() + b.size() + 3;
  push(e, impl_->cls, 0, 0, 0, -1);
  for (std::size_t k = 0; k < la; ++k) push(e, a[k].id, 0, a[k].begin, a[k].end, 0);
  push(e, impl_->sep, 0, 0, 0, -1);
  for (std::size_t k = 0; k < lb; ++k) push(e, b[k].id, 1, b[k].begin, b[k].end, 1);
  push(e, impl_->sep, 1, 0, 0, -1);
}

int32_t WordPieceTokenizer::cls_id() const { return impl_->cls; }
int32_t WordPieceTokenizer::sep_id() const { return impl_->sep; }
int32_t WordPieceTokenizer::pad_id() const { return impl_->pad; }
int32_t WordPieceTokenizer::unk_id() const { return impl_->unk; }

int32_t WordPieceTokenizer::mask_id() const {
  if (impl_->mask < 0) {
    throw Unsupported(
        fmt::format("vocabulary file {} has no [MASK] token (needed for masked "
                    "language modelling)",
                    impl_->source));
  }
  return impl_->mask;
}

std::size_t WordPieceTokenizer::vocab_size() const { return impl_->spans.size(); }

std::string_view WordPieceTokenizer::token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->spans.size()) {
    throw InvalidArgument(fmt::format("token id {} is outside the vocabulary (expected 0 to {})",
                                      id, impl_->spans.size() - 1));
  }
  return impl_->token(id);
}

std::optional<int32_t> WordPieceTokenizer::find(std::string_view token) const {
  int32_t id = impl_->initial.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::string WordPieceTokenizer::decode(std::span<const int32_t> ids) const {
  std::string joined;
  for (std::size_t k = 0; k < ids.size(); ++k) {
    if (k > 0) joined += ' ';
    joined += token(ids[k]);
  }
  std::string out;
  out.reserve(joined.size());
  for (std::size_t k = 0; k < joined.size();) {
    if (joined.compare(k, 3, " ##") == 0) {
      k += 3;
    } else {
      out += joined[k++];
    }
  }
  auto is_ws = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  std::size_t b = 0, e = out.size();
  while (b < e && is_ws(out[b])) ++b;
  while (e > b && is_ws(out[e - 1])) --e;
  return out.substr(b, e - b);
}

const TokenizerOptions& WordPieceTokenizer::options() const { return impl_->options; }

}  // namespace octet::text
