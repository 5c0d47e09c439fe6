// WordPieceTokenizer against the independent Python reference on real data: every example of
// the GLUE dev sets (ids and token type ids exactly, truncated to 128 tokens), and the
// BasicTokenizer output for every Unicode code point. Fixtures: scripts/tokenizer_reference.py
// --golden, run by scripts/make_golden.sh into <build>/golden/tokenizer.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "text/unicode.h"
#include "text/utf8.h"
#include "text/wordpiece.h"

namespace octet::text {
namespace {

using Json = nlohmann::json;

const WordPieceTokenizer& uncased() {
  static const WordPieceTokenizer tok =
      WordPieceTokenizer::from_vocab_file(test::require_data("vocab/vocab.txt"));
  return tok;
}

std::vector<int32_t> ids_of(const std::vector<WordPieceTokenizer::Token>& tokens) {
  std::vector<int32_t> ids;
  for (const auto& t : tokens) ids.push_back(t.id);
  return ids;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += fmt::format("{}{}", s.empty() ? "" : " ", uncased().token(id));
  return s;
}

class TokenizerGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(TokenizerGolden, MatchesReferenceOnEveryExample) {
  const auto path = test::golden_dir() / "tokenizer" / (std::string(GetParam()) + ".jsonl");
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing " << path << " (rerun scripts/make_golden.sh)";
  const auto& tok = uncased();
  std::size_t examples = 0, mismatches = 0, tokens = 0;
  for (std::string line; std::getline(in, line);) {
    Json r = Json::parse(line);
    ++examples;
    const std::string a = r["text_a"];
    const bool pair = !r["text_b"].is_null();
    const std::string b = pair ? r["text_b"].get<std::string>() : std::string();
    auto ids_a = ids_of(tok.tokenize(a));
    auto ids_b = pair ? ids_of(tok.tokenize(b)) : std::vector<int32_t>{};
    const std::size_t m = r["max_length"];
    Encoding e = pair ? tok.encode_pair(a, b, m) : tok.encode(a, m);
    tokens += ids_a.size() + ids_b.size();
    auto want_a = r["ids_a"].get<std::vector<int32_t>>();
    auto want_b = pair ? r["ids_b"].get<std::vector<int32_t>>() : std::vector<int32_t>{};
    bool ok = ids_a == want_a && ids_b == want_b &&
              e.input_ids == r["input_ids"].get<std::vector<int32_t>>() &&
              e.token_type_ids == r["token_type_ids"].get<std::vector<int32_t>>();
    if (!ok && ++mismatches <= 5) {
      std::string msg =
          fmt::format("{} line {}\n  text_a:   {}", path.filename().string(), r["line"].dump(), a);
      if (pair) msg += fmt::format("\n  text_b:   {}", b);
      msg += fmt::format("\n  expected: {}", show(want_a));
      if (pair) msg += fmt::format(" || {}", show(want_b));
      msg += fmt::format("\n  found:    {}", show(ids_a));
      if (pair) msg += fmt::format(" || {}", show(ids_b));
      ADD_FAILURE() << msg;
    }
  }
  EXPECT_GT(examples, 200u);
  EXPECT_EQ(mismatches, 0u) << mismatches << " of " << examples << " examples differ";
  std::printf("%s: %zu examples, %zu tokens, %zu mismatches\n", GetParam(), examples, tokens,
              mismatches);
}

INSTANTIATE_TEST_SUITE_P(Glue, TokenizerGolden,
                         ::testing::Values("sst2", "cola", "mrpc", "stsb", "rte"));

// Random strings over an adversarial alphabet (combining marks, jamo, sigma, CJK, dropped
// characters) under four option sets: words and ids must match exactly, and offsets must be
// well-formed.
TEST(TokenizerGoldenRandom, MatchesReferenceOnRandomStrings) {
  const auto path = test::golden_dir() / "tokenizer" / "random.jsonl";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing " << path;
  const auto vocab = test::require_data("vocab/vocab.txt");
  std::map<std::string, WordPieceTokenizer> modes;
  TokenizerOptions o;
  modes.emplace("uncased", WordPieceTokenizer::from_vocab_file(vocab, o));
  o.lower_case = false;
  modes.emplace("cased", WordPieceTokenizer::from_vocab_file(vocab, o));
  o.lower_case = true;
  o.strip_accents = false;
  modes.emplace("lower_keep_accents", WordPieceTokenizer::from_vocab_file(vocab, o));
  o.strip_accents.reset();
  o.tokenize_chinese_chars = false;
  modes.emplace("no_cjk", WordPieceTokenizer::from_vocab_file(vocab, o));
  std::size_t lines = 0, mismatches = 0;
  for (std::string line; std::getline(in, line);) {
    Json r = Json::parse(line);
    ++lines;
    const auto& tok = modes.at(r["mode"].get<std::string>());
    const std::string text = r["text"];
    auto words = tok.basic_tokenize(text);
    auto tokens = tok.tokenize(text);
    auto ids = ids_of(tokens);
    for (const auto& t : tokens) {
      ASSERT_LT(t.begin, t.end) << Json(text).dump();
      ASSERT_LE(t.end, text.size()) << Json(text).dump();
    }
    if (words != r["words"].get<std::vector<std::string>>() ||
        ids != r["ids"].get<std::vector<int32_t>>()) {
      if (++mismatches <= 5) {
        ADD_FAILURE() << "mode " << r["mode"] << ", text " << Json(text).dump()
                      << "\n  expected words " << r["words"].dump() << "\n  found words    "
                      << Json(words).dump() << "\n  expected ids " << r["ids"].dump()
                      << "\n  found ids    " << Json(ids).dump();
      }
    }
  }
  EXPECT_EQ(lines, 12000u);
  EXPECT_EQ(mismatches, 0u) << mismatches << " of " << lines << " differ";
}

// BasicTokenizer of "X" + c + "y" for every code point c, under three option sets. A difference
// is accepted only where the two Unicode databases disagree on the code point's general category
// (Python's unicodedata and utf8proc are different Unicode versions); any other difference fails.
TEST(TokenizerGoldenCodepoints, BasicTokenizerMatchesForEveryCodePoint) {
  const auto path = test::golden_dir() / "tokenizer" / "codepoints.jsonl";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing " << path;
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  Json header = Json::parse(line);
  const std::string python_version = header["unicode_version"];
  const auto vocab = test::require_data("vocab/vocab.txt");
  auto options = [](bool lower, std::optional<bool> strip) {
    TokenizerOptions o;
    o.lower_case = lower;
    o.strip_accents = strip;
    return o;
  };
  const std::vector<WordPieceTokenizer> modes = [&] {
    std::vector<WordPieceTokenizer> v;
    v.push_back(WordPieceTokenizer::from_vocab_file(vocab, options(true, std::nullopt)));
    v.push_back(WordPieceTokenizer::from_vocab_file(vocab, options(false, std::nullopt)));
    v.push_back(WordPieceTokenizer::from_vocab_file(vocab, options(true, false)));
    return v;
  }();
  ASSERT_EQ(header["modes"].size(), modes.size());

  std::size_t compared = 0, version_differences = 0, unexplained = 0;
  std::vector<std::string> examples;
  auto check = [&](char32_t cp, const std::string& python_category,
                   const std::vector<std::vector<std::string>>& expected) {
    ++compared;
    std::string probe = "X";
    append_utf8(probe, cp);
    probe += "y";
    bool same = true;
    std::string found;
    for (std::size_t m = 0; m < modes.size(); ++m) {
      auto words = modes[m].basic_tokenize(probe);
      same = same && words == expected[m];
      found += fmt::format(" {}", Json(words).dump());
    }
    if (same) return;
    const std::string ours(general_category(cp));
    if (ours != python_category) {
      if (++version_differences <= 5) {
        examples.push_back(fmt::format("U+{:04X} ({} in Python, {} in utf8proc)", uint32_t(cp),
                                       python_category, ours));
      }
      return;
    }
    if (++unexplained <= 10) {
      std::string want;
      for (const auto& w : expected) {
        want += ' ';
        want += Json(w).dump();
      }
      ADD_FAILURE() << fmt::format("U+{:04X} (category {} in both): expected{}, found{}",
                                   uint32_t(cp), ours, want, found);
    }
  };

  while (std::getline(in, line)) {
    Json r = Json::parse(line);
    if (r.is_object()) {
      // Unassigned, private-use and surrogate code points: Hugging Face drops them all.
      for (const Json& range : r["dropped_ranges"]) {
        for (uint32_t cp = range[0]; cp <= range[1].get<uint32_t>(); ++cp) {
          if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // not representable in UTF-8
          // Reported as "Cn": a difference here is explained only if utf8proc assigns the code
          // point (private-use code points are dropped by both and never differ).
          check(cp, "Cn", {{"xy"}, {"Xy"}, {"xy"}});
        }
      }
      continue;
    }
    std::vector<std::vector<std::string>> expected;
    for (std::size_t m = 0; m < modes.size(); ++m) {
      expected.push_back(r[2 + m].get<std::vector<std::string>>());
    }
    check(r[0].get<uint32_t>(), r[1].get<std::string>(), expected);
  }
  EXPECT_EQ(compared, 0x110000u - 0x800u);
  EXPECT_EQ(unexplained, 0u);
  std::string summary = fmt::format(
      "{} code points compared; {} differ only where Unicode {} (Python) and {} (utf8proc) "
      "assign different categories",
      compared, version_differences, python_version, unicode_version());
  for (const auto& e : examples) summary += fmt::format("\n  e.g. {}", e);
  std::printf("%s\n", summary.c_str());
}

}  // namespace
}  // namespace octet::text
