// WordPieceTokenizer against the independent Python reference (tests/fixtures/tokenizer/
// cases.jsonl, written by scripts/tokenizer_reference.py --cases), plus offsets, truncation,
// loading and error handling.
#include "text/wordpiece.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/test_support.h"
#include "octet/error.h"

namespace octet::text {
namespace {

using Json = nlohmann::json;

std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(OCTET_SOURCE_DIR) / "tests" / "fixtures" / "tokenizer" / name;
}

const WordPieceTokenizer& uncased() {
  static const WordPieceTokenizer tok =
      WordPieceTokenizer::from_vocab_file(test::require_data("vocab/vocab.txt"));
  return tok;
}

std::vector<Json> read_cases() {
  std::ifstream in(fixture("cases.jsonl"));
  EXPECT_TRUE(in) << "missing " << fixture("cases.jsonl");
  std::vector<Json> cases;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) cases.push_back(Json::parse(line));
  }
  return cases;
}

TokenizerOptions make_options(bool lower_case, std::optional<bool> strip_accents = std::nullopt,
                              bool tokenize_chinese_chars = true, std::size_t max_chars = 100) {
  TokenizerOptions o;
  o.lower_case = lower_case;
  o.strip_accents = strip_accents;
  o.tokenize_chinese_chars = tokenize_chinese_chars;
  o.max_input_chars_per_word = max_chars;
  return o;
}

TokenizerOptions options_of(const Json& o) {
  TokenizerOptions opt;
  opt.lower_case = o.value("lower_case", true);
  if (o.contains("strip_accents") && !o["strip_accents"].is_null()) {
    opt.strip_accents = o["strip_accents"].get<bool>();
  }
  opt.tokenize_chinese_chars = o.value("tokenize_chinese_chars", true);
  opt.max_input_chars_per_word = o.value("max_chars", std::size_t{100});
  return opt;
}

WordPieceTokenizer tokenizer_for(const Json& c) {
  auto path =
      c["vocab"] == "uncased" ? test::require_data("vocab/vocab.txt") : fixture("cased_vocab.txt");
  return WordPieceTokenizer::from_vocab_file(path, options_of(c["options"]));
}

std::vector<int32_t> ids_of(const std::vector<WordPieceTokenizer::Token>& tokens) {
  std::vector<int32_t> ids;
  for (const auto& t : tokens) ids.push_back(t.id);
  return ids;
}

std::string show(const WordPieceTokenizer& tok, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += fmt::format("{}{}({})", s.empty() ? "" : " ", tok.token(id), id);
  return s;
}

TEST(WordPieceTokenizer, MatchesReferenceOnCuratedCases) {
  auto cases = read_cases();
  ASSERT_GE(cases.size(), 50u);
  for (const Json& c : cases) {
    SCOPED_TRACE(
        fmt::format("case {}: text_a {}", c["name"].get<std::string>(), c["text_a"].dump()));
    WordPieceTokenizer tok = tokenizer_for(c);
    const std::string a = c["text_a"];
    EXPECT_EQ(tok.basic_tokenize(a), c["words_a"].get<std::vector<std::string>>());
    auto ids_a = ids_of(tok.tokenize(a));
    auto want_a = c["ids_a"].get<std::vector<int32_t>>();
    EXPECT_EQ(ids_a, want_a) << "found    " << show(tok, ids_a) << "\nexpected "
                             << show(tok, want_a);
    std::optional<std::string> b;
    if (!c["text_b"].is_null()) {
      b = c["text_b"].get<std::string>();
      auto ids_b = ids_of(tok.tokenize(*b));
      auto want_b = c["ids_b"].get<std::vector<int32_t>>();
      EXPECT_EQ(ids_b, want_b) << "text_b " << *b << "\nfound    " << show(tok, ids_b)
                               << "\nexpected " << show(tok, want_b);
    }
    for (const Json& e : c["encodings"]) {
      const std::size_t m = e["max_length"];
      Encoding enc = b ? tok.encode_pair(a, *b, m) : tok.encode(a, m);
      EXPECT_EQ(enc.input_ids, e["input_ids"].get<std::vector<int32_t>>()) << "max_length " << m;
      EXPECT_EQ(enc.token_type_ids, e["token_type_ids"].get<std::vector<int32_t>>())
          << "max_length " << m;
      EXPECT_LE(enc.size(), m);
      EXPECT_EQ(enc.offsets.size(), enc.size());
      EXPECT_EQ(enc.segment.size(), enc.size());
    }
  }
}

// Every token's source bytes, run through the same normalization, contain the token's text (its
// "##" removed); when no other token shares those bytes, they equal it exactly. The exceptions
// are a character that normalization expands (a Hangul syllable into jamo) and WordPiece splits:
// each piece then covers the whole character.
void check_offsets(const WordPieceTokenizer& tok, std::string_view text) {
  auto tokens = tok.tokenize(text);
  for (std::size_t k = 0; k < tokens.size(); ++k) {
    const auto& t = tokens[k];
    SCOPED_TRACE(fmt::format("text {:?}, token {} {:?} at [{}, {})", std::string(text), k,
                             std::string(tok.token(t.id)), t.begin, t.end));
    ASSERT_LT(t.begin, t.end);
    ASSERT_LE(t.end, text.size());
    if (k > 0) {
      EXPECT_GE(t.begin, tokens[k - 1].begin);
    }
    if (t.id == tok.unk_id()) continue;
    std::string piece(tok.token(t.id));
    if (piece.rfind("##", 0) == 0) piece = piece.substr(2);
    std::string normalized;
    for (const auto& w : tok.basic_tokenize(text.substr(t.begin, t.end - t.begin))) normalized += w;
    // Final sigma depends on the letters around it, which a token's own bytes may not include.
    auto unify_sigma = [](std::string& s) {
      for (std::size_t p; (p = s.find("\xcf\x82")) != std::string::npos;) {
        s.replace(p, 2, "\xcf\x83");
      }
    };
    unify_sigma(piece);
    unify_sigma(normalized);
    bool shared = (k > 0 && tokens[k - 1].end > t.begin) ||
                  (k + 1 < tokens.size() && tokens[k + 1].begin < t.end);
    if (shared) {
      EXPECT_NE(normalized.find(piece), std::string::npos);
    } else {
      EXPECT_EQ(normalized, piece);
    }
  }
}

TEST(WordPieceTokenizer, OffsetsCoverTheOriginalBytesOfEveryToken) {
  for (const Json& c : read_cases()) {
    WordPieceTokenizer tok = tokenizer_for(c);
    check_offsets(tok, c["text_a"].get<std::string>());
    if (!c["text_b"].is_null()) check_offsets(tok, c["text_b"].get<std::string>());
  }
  std::ifstream in(test::require_data("glue/SST-2/dev.tsv"));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) check_offsets(uncased(), line.substr(0, line.find('\t')));
}

TEST(WordPieceTokenizer, OffsetsOfNormalizedCharactersSpanTheOriginalCharacter) {
  const auto& tok = uncased();
  // "Ca" "f" "é": the accented character is two bytes; its token ends after both.
  auto t = tok.tokenize("Café!");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(tok.token(t[0].id), "cafe");
  EXPECT_EQ(t[0].begin, 0u);
  EXPECT_EQ(t[0].end, 5u);
  EXPECT_EQ(t[1].begin, 5u);
  EXPECT_EQ(t[1].end, 6u);
  // A dropped control character inside a word stays inside the word's range.
  t = tok.tokenize("  ab\001c ");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(tok.token(t[0].id), "abc");
  EXPECT_EQ(t[0].begin, 2u);
  EXPECT_EQ(t[0].end, 6u);
  // Continuation pieces start where the previous piece ended.
  t = tok.tokenize("unaffable");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].end, 3u);
  EXPECT_EQ(t[1].begin, 3u);
  EXPECT_EQ(t[2].end, 9u);
  // An [UNK] word covers the whole word.
  t = tok.tokenize("x \xe2\x98\x83 y");  // U+2603 snowman
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[1].id, tok.unk_id());
  EXPECT_EQ(t[1].begin, 2u);
  EXPECT_EQ(t[1].end, 5u);
}

TEST(WordPieceTokenizer, OffsetsOfComposedCharactersInCasedMode) {
  WordPieceTokenizer tok =
      WordPieceTokenizer::from_vocab_file(fixture("cased_vocab.txt"), make_options(false));
  // "Cafe" + U+0301 composes (NFC) into "Café": the token covers the base letters and the mark.
  auto t = tok.tokenize("Cafe\xcc\x81 x");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(tok.token(t[0].id), "Café");
  EXPECT_EQ(t[0].begin, 0u);
  EXPECT_EQ(t[0].end, 6u);
}

TEST(WordPieceTokenizer, EncodeAddsSpecialTokensWithSegmentsAndTypes) {
  const auto& tok = uncased();
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 100);
  EXPECT_EQ(tok.mask_id(), 103);
  EXPECT_EQ(tok.vocab_size(), 30522u);
  Encoding e = tok.encode_pair("Hello world", "Good bye", 16);
  ASSERT_EQ(e.size(), 7u);
  EXPECT_EQ(e.input_ids.front(), 101);
  EXPECT_EQ(e.input_ids[3], 102);
  EXPECT_EQ(e.input_ids.back(), 102);
  EXPECT_EQ(e.token_type_ids, (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(e.segment, (std::vector<int8_t>{-1, 0, 0, -1, 1, 1, -1}));
  EXPECT_EQ(e.offsets[0], (std::pair<std::size_t, std::size_t>{0, 0}));
  EXPECT_EQ(e.offsets[2], (std::pair<std::size_t, std::size_t>{6, 11}));
  EXPECT_EQ(e.offsets[5], (std::pair<std::size_t, std::size_t>{5, 8}));
  Encoding empty = tok.encode("", 8);
  EXPECT_EQ(empty.input_ids, (std::vector<int32_t>{101, 102}));
}

// The closed form in encode_pair against Hugging Face's loop, for every pair of lengths.
TEST(WordPieceTokenizer, LongestFirstTruncationMatchesOneTokenAtATime) {
  const auto& tok = uncased();
  auto words = [](std::size_t n) {
    std::string s;
    for (std::size_t k = 0; k < n; ++k) s += "a ";
    return s;
  };
  Encoding reused;
  for (std::size_t la = 0; la <= 12; ++la) {
    for (std::size_t lb = 0; lb <= 12; ++lb) {
      for (std::size_t m = 3; m <= 28; ++m) {
        std::size_t ea = la, eb = lb;
        while (ea + eb + 3 > m) {
          if (ea > eb) {
            --ea;
          } else {
            --eb;
          }
        }
        Encoding e = tok.encode_pair(words(la), words(lb), m);
        std::size_t fa = 0, fb = 0;
        for (int8_t s : e.segment) {
          if (s == 0) ++fa;
          if (s == 1) ++fb;
        }
        EXPECT_EQ(fa, ea) << "la " << la << " lb " << lb << " max_length " << m;
        EXPECT_EQ(fb, eb) << "la " << la << " lb " << lb << " max_length " << m;
        EXPECT_EQ(e.untruncated_size, la + lb + 3);
        // The in-place form reuses one Encoding across calls and gives the same result.
        reused.input_ids.push_back(99);  // stale content must not survive
        tok.encode_pair(words(la), words(lb), m, reused);
        EXPECT_EQ(reused.input_ids, e.input_ids);
        EXPECT_EQ(reused.token_type_ids, e.token_type_ids);
        EXPECT_EQ(reused.offsets, e.offsets);
        EXPECT_EQ(reused.segment, e.segment);
        tok.encode(words(la), m, reused);
        EXPECT_EQ(reused.size(), std::min(la + 2, m));
        EXPECT_EQ(reused.untruncated_size, la + 2);
      }
    }
  }
}

TEST(WordPieceTokenizer, RejectsMaxLengthTooSmallForSpecialTokens) {
  const auto& tok = uncased();
  EXPECT_THROW(tok.encode("a", 1), InvalidArgument);
  EXPECT_THROW(tok.encode("a", 0), InvalidArgument);
  EXPECT_THROW(tok.encode_pair("a", "b", 2), InvalidArgument);
  EXPECT_EQ(tok.encode("a b c", 2).size(), 2u);
  EXPECT_EQ(tok.encode_pair("a b", "c d", 3).size(), 3u);
}

TEST(WordPieceTokenizer, RejectsInvalidUtf8WithByteOffset) {
  const auto& tok = uncased();
  try {
    tok.tokenize("abc\377def");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("byte 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tok.encode("\xc3", 8), DataError);                     // truncated sequence
  EXPECT_THROW(tok.encode_pair("ok", "\xed\xa0\x80", 8), DataError);  // surrogate
}

TEST(WordPieceTokenizer, DecodeJoinsContinuationsAndKeepsSpecials) {
  const auto& tok = uncased();
  Encoding e = tok.encode("Unaffable tokenization!", 32);
  EXPECT_EQ(tok.decode(e.input_ids), "[CLS] unaffable tokenization ! [SEP]");
  EXPECT_EQ(tok.decode({}), "");
  std::vector<int32_t> bad{5, 30522};
  EXPECT_THROW(tok.decode(bad), InvalidArgument);
  EXPECT_THROW(tok.token(-1), InvalidArgument);
  EXPECT_EQ(tok.find("hello"), std::optional<int32_t>(7592));
  EXPECT_EQ(tok.find("##ing"), std::optional<int32_t>(2075));
  EXPECT_EQ(tok.find("not-a-token"), std::nullopt);
}

// Documented difference from Hugging Face's default: special-token strings in the input are text.
TEST(WordPieceTokenizer, TokenizesSpecialTokenStringsAsText) {
  const auto& tok = uncased();
  EXPECT_EQ(tok.basic_tokenize("a [SEP] b"), (std::vector<std::string>{"a", "[", "sep", "]", "b"}));
  for (const auto& t : tok.tokenize("[CLS] [MASK]")) EXPECT_NE(t.id, tok.cls_id());
}

// Arbitrary bytes either raise DataError (not UTF-8) or tokenize with well-formed offsets.
TEST(WordPieceTokenizer, NeverCrashesOnRandomBytes) {
  const auto& tok = uncased();
  std::mt19937 rng(12345);
  const unsigned char interesting[] = {0x00, 0x09, 0x20, 0x41, 0x7f, 0x80, 0xbf, 0xc2,
                                       0xc3, 0xcc, 0xcf, 0xe1, 0xe2, 0xe4, 0xea, 0xed,
                                       0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x2e, 0x23};
  std::size_t valid = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s(rng() % 48, '\0');
    for (char& c : s) {
      c = static_cast<char>(rng() % 2 ? interesting[rng() % sizeof(interesting)] : rng() % 256);
    }
    try {
      auto tokens = tok.tokenize(s);
      ++valid;
      for (const auto& t : tokens) {
        ASSERT_LT(t.begin, t.end) << "seed 12345, iteration " << iter;
        ASSERT_LE(t.end, s.size()) << "seed 12345, iteration " << iter;
        ASSERT_LT(static_cast<std::size_t>(t.id), tok.vocab_size());
      }
    } catch (const DataError&) {
    }
  }
  EXPECT_GT(valid, 100u);
}

TEST(WordPieceTokenizer, TokenizesLongInputLinearly) {
  const auto& tok = uncased();
  const std::string sentence = "The café's naïve résumé, 北京, unaffable! ";
  const std::size_t per = tok.tokenize(sentence).size();
  std::string text;
  for (int k = 0; k < 20000; ++k) text += sentence;
  auto tokens = tok.tokenize(text);
  ASSERT_EQ(tokens.size(), per * 20000);
  EXPECT_EQ(tokens.back().end, text.size() - 1);
}

TEST(WordPieceTokenizer, IsSafeToUseFromSeveralThreads) {
  const auto& tok = uncased();
  const std::string text = "Déjà vu: the café's naïve résumé, 北京 and 한국어!";
  const auto expected = ids_of(tok.tokenize(text));
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      bool same = true;
      for (int k = 0; k < 200; ++k) same = same && ids_of(tok.tokenize(text)) == expected;
      ok[t] = same;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

// ---- Loading -------------------------------------------------------------------------------

const std::string kMinimalVocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\n";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ModelFormatError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

TEST(WordPieceTokenizerLoading, RejectsMissingVocabularyNamingTheFile) {
  test::TempDir dir;
  auto msg = error_of([&] { WordPieceTokenizer::from_vocab_file(dir / "nope.txt"); });
  EXPECT_NE(msg.find("nope.txt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  msg = error_of([&] { WordPieceTokenizer::from_model_dir(dir.path()); });
  EXPECT_NE(msg.find("vocab.txt"), std::string::npos) << msg;
}

TEST(WordPieceTokenizerLoading, RejectsEmptyVocabulary) {
  test::TempDir dir;
  test::write_file(dir / "vocab.txt", "");
  auto msg = error_of([&] { WordPieceTokenizer::from_vocab_file(dir / "vocab.txt"); });
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
}

TEST(WordPieceTokenizerLoading, RejectsNonUtf8VocabularyNamingTheLine) {
  test::TempDir dir;
  test::write_file(dir / "vocab.txt", kMinimalVocab + "ok\r\nbad\xc0\xafline\n");
  auto msg = error_of([&] { WordPieceTokenizer::from_vocab_file(dir / "vocab.txt"); });
  EXPECT_NE(msg.find("line 9"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0xc0"), std::string::npos) << msg;
}

TEST(WordPieceTokenizerLoading, RejectsVocabularyWithoutRequiredSpecialTokens) {
  test::TempDir dir;
  for (const char* missing : {"[PAD]", "[UNK]", "[CLS]", "[SEP]"}) {
    std::string vocab;
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"}) {
      if (std::string(t) != missing) vocab += std::string(t) + "\n";
    }
    test::write_file(dir / "vocab.txt", vocab);
    auto msg = error_of([&] { WordPieceTokenizer::from_vocab_file(dir / "vocab.txt"); });
    EXPECT_NE(msg.find(missing), std::string::npos) << msg;
    EXPECT_NE(msg.find("vocab.txt"), std::string::npos) << msg;
  }
}

TEST(WordPieceTokenizerLoading, MaskIdIsUnsupportedWithoutMaskToken) {
  test::TempDir dir;
  test::write_file(dir / "vocab.txt", kMinimalVocab);
  auto tok = WordPieceTokenizer::from_vocab_file(dir / "vocab.txt");
  EXPECT_THROW(tok.mask_id(), Unsupported);
}

TEST(WordPieceTokenizerLoading, DuplicateTokensKeepTheLastIdLikeHuggingFace) {
  test::TempDir dir;
  test::write_file(dir / "vocab.txt", kMinimalVocab + "hello\n");
  auto tok = WordPieceTokenizer::from_vocab_file(dir / "vocab.txt");
  EXPECT_EQ(tok.vocab_size(), 8u);
  EXPECT_EQ(tok.find("hello"), std::optional<int32_t>(7));
  EXPECT_EQ(tok.token(4), "hello");
  EXPECT_EQ(ids_of(tok.tokenize("hello worlds")), (std::vector<int32_t>{7, 5, 6}));
}

TEST(WordPieceTokenizerLoading, AcceptsCrLfAndCrLineEndingsAndNoFinalNewline) {
  test::TempDir dir;
  test::write_file(dir / "vocab.txt", "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\r\nhello");
  auto tok = WordPieceTokenizer::from_vocab_file(dir / "vocab.txt");
  EXPECT_EQ(tok.vocab_size(), 5u);
  EXPECT_EQ(tok.cls_id(), 2);
  EXPECT_EQ(tok.find("hello"), std::optional<int32_t>(4));
}

TEST(WordPieceTokenizerLoading, ModelDirReadsTokenizerConfig) {
  test::TempDir dir;
  test::write_file(dir / "vocab.txt", kMinimalVocab + "Hello\n");
  auto tok = WordPieceTokenizer::from_model_dir(dir.path());
  EXPECT_TRUE(tok.options().lower_case);
  EXPECT_EQ(ids_of(tok.tokenize("Hello")), (std::vector<int32_t>{4}));

  test::write_file(dir / "tokenizer_config.json",
                   R"({"do_lower_case": false, "strip_accents": null, "model_max_length": 512})");
  tok = WordPieceTokenizer::from_model_dir(dir.path());
  EXPECT_FALSE(tok.options().lower_case);
  EXPECT_FALSE(tok.options().strip_accents.has_value());
  EXPECT_EQ(ids_of(tok.tokenize("Hello hello")), (std::vector<int32_t>{7, 4}));

  test::write_file(dir / "tokenizer_config.json",
                   R"({"do_lower_case": true, "strip_accents": false,
                       "tokenize_chinese_chars": false})");
  tok = WordPieceTokenizer::from_model_dir(dir.path());
  EXPECT_EQ(tok.options().strip_accents, std::optional<bool>(false));
  EXPECT_FALSE(tok.options().tokenize_chinese_chars);
}

TEST(WordPieceTokenizerLoading, RejectsMalformedTokenizerConfig) {
  test::TempDir dir;
  test::write_file(dir / "vocab.txt", kMinimalVocab);
  test::write_file(dir / "tokenizer_config.json", R"({"do_lower_case": tru)");
  auto msg = error_of([&] { WordPieceTokenizer::from_model_dir(dir.path()); });
  EXPECT_NE(msg.find("tokenizer_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;

  test::write_file(dir / "tokenizer_config.json", R"({"do_lower_case": "yes"})");
  msg = error_of([&] { WordPieceTokenizer::from_model_dir(dir.path()); });
  EXPECT_NE(msg.find("do_lower_case"), std::string::npos) << msg;
  EXPECT_NE(msg.find("string"), std::string::npos) << msg;

  test::write_file(dir / "tokenizer_config.json", "[1, 2]");
  msg = error_of([&] { WordPieceTokenizer::from_model_dir(dir.path()); });
  EXPECT_NE(msg.find("object"), std::string::npos) << msg;
}

TEST(WordPieceTokenizerOptions, CasedVocabularyKeepsCaseAndAccents) {
  auto tok = WordPieceTokenizer::from_vocab_file(fixture("cased_vocab.txt"), make_options(false));
  EXPECT_EQ(tok.basic_tokenize("The Café"), (std::vector<std::string>{"The", "Café"}));
  auto lower_keep =
      WordPieceTokenizer::from_vocab_file(fixture("cased_vocab.txt"), make_options(true, false));
  EXPECT_EQ(lower_keep.basic_tokenize("The Café"), (std::vector<std::string>{"the", "café"}));
  auto strip_only =
      WordPieceTokenizer::from_vocab_file(fixture("cased_vocab.txt"), make_options(false, true));
  EXPECT_EQ(strip_only.basic_tokenize("The Café"), (std::vector<std::string>{"The", "Cafe"}));
  auto no_cjk = WordPieceTokenizer::from_vocab_file(fixture("cased_vocab.txt"),
                                                    make_options(true, std::nullopt, false));
  EXPECT_EQ(no_cjk.basic_tokenize("ab中国cd"), (std::vector<std::string>{"ab中国cd"}));
  EXPECT_EQ(tok.basic_tokenize("ab中国cd"), (std::vector<std::string>{"ab", "中", "国", "cd"}));
}

TEST(WordPieceTokenizerOptions, RejectsZeroMaxInputCharsPerWord) {
  EXPECT_THROW(WordPieceTokenizer::from_vocab_file(fixture("cased_vocab.txt"),
                                                   make_options(true, std::nullopt, true, 0)),
               InvalidArgument);
}

}  // namespace
}  // namespace octet::text
