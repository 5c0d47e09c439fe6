// WordPiece tokenization for BERT-family models, matching Hugging Face's (slow) `BertTokenizer`:
// BasicTokenizer (clean text, space CJK ideographs, NFC, lower-case, strip accents, split
// punctuation) followed by greedy longest-match-first WordPiece with "##" continuations.
//
// Usage:
//   auto tok = octet::text::WordPieceTokenizer::from_model_dir("models/bert-base-uncased");
//   octet::text::Encoding e = tok.encode_pair(question, context, /*max_length=*/384);
//   // e.input_ids, e.token_type_ids: [CLS] a [SEP] b [SEP], e.offsets: bytes in the source text
//
// Ids are int32 indices into vocab.txt (line number, 0-based). Offsets are byte ranges
// [begin, end) into the original UTF-8 text a token came from; a token produced from a character
// that normalization changed (accent stripped, lower-cased, NFD-expanded) still covers the whole
// original character, so several tokens can share a character's bytes (see docs/tokenizer.md).
// Encodings are not padded: the caller pads to its batch shape with pad_id().
//
// Errors: invalid UTF-8 input -> DataError with the byte offset; a missing, empty or malformed
// vocabulary or tokenizer_config.json -> ModelFormatError naming the file and line;
// max_length too small for the special tokens -> InvalidArgument.
//
// Threading: a WordPieceTokenizer is immutable after construction; all const methods may be
// called concurrently from any number of threads. It owns its vocabulary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace octet::text {

// One model input: [CLS] a [SEP] or [CLS] a [SEP] b [SEP]. All vectors have size() entries.
struct Encoding {
  std::vector<int32_t> input_ids;
  // 0 for [CLS], a and the [SEP] after a; 1 for b and its [SEP].
  std::vector<int32_t> token_type_ids;
  // Byte [begin, end) into the original text of the token's segment; (0, 0) for special tokens.
  std::vector<std::pair<std::size_t, std::size_t>> offsets;
  // 0 = text_a, 1 = text_b, -1 = special token.
  std::vector<int8_t> segment;
  // size() before truncation to max_length (special tokens included): > size() when truncated.
  std::size_t untruncated_size = 0;

  std::size_t size() const { return input_ids.size(); }
};

struct TokenizerOptions {
  bool lower_case = true;
  // Unset: follow lower_case, as BERT and Hugging Face do.
  std::optional<bool> strip_accents;
  // Surround CJK ideographs with spaces so that each becomes its own word.
  bool tokenize_chinese_chars = true;
  // A word (after punctuation splitting) with more code points than this becomes [UNK].
  std::size_t max_input_chars_per_word = 100;
};

class WordPieceTokenizer {
 public:
  // One line per token, id = 0-based line number ("\n", "\r\n" or "\r" terminated). A token that
  // appears twice keeps the id of its last occurrence for lookups, as Hugging Face does.
  static WordPieceTokenizer from_vocab_file(const std::filesystem::path& vocab_txt,
                                            TokenizerOptions options = {});
  // dir/vocab.txt plus dir/tokenizer_config.json if present (do_lower_case, strip_accents,
  // tokenize_chinese_chars); Hugging Face's defaults for keys that are absent.
  static WordPieceTokenizer from_model_dir(const std::filesystem::path& dir);

  WordPieceTokenizer(WordPieceTokenizer&&) noexcept;
  WordPieceTokenizer& operator=(WordPieceTokenizer&&) noexcept;
  ~WordPieceTokenizer();

  struct Token {
    int32_t id;
    std::size_t begin, end;  // byte offsets into the text passed to tokenize()
  };

  // The WordPiece tokens of `text`, without special tokens. Empty or whitespace-only text gives
  // no tokens. Throws DataError if `text` is not valid UTF-8.
  std::vector<Token> tokenize(std::string_view text) const;

  // The normalized words BasicTokenizer hands to WordPiece (cleaned, lower-cased and
  // accent-stripped as configured, split on whitespace and punctuation). For tests and debugging.
  std::vector<std::string> basic_tokenize(std::string_view text) const;

  // [CLS] a [SEP], truncating a from the end so that size() <= max_length (>= 2).
  Encoding encode(std::string_view text_a, std::size_t max_length) const;
  // [CLS] a [SEP] b [SEP] with Hugging Face's "longest_first" truncation: one token at a time
  // from the end of the longer sequence (from b when they are equal) until size() <= max_length
  // (>= 3).
  Encoding encode_pair(std::string_view text_a, std::string_view text_b,
                       std::size_t max_length) const;
  // The same into `out`, overwriting its vectors in place (their capacity reused): with a reused
  // `out`, tokenizing allocates nothing once its vectors and the per-thread scratch are large
  // enough.
  void encode(std::string_view text_a, std::size_t max_length, Encoding& out) const;
  void encode_pair(std::string_view text_a, std::string_view text_b, std::size_t max_length,
                   Encoding& out) const;

  int32_t cls_id() const;
  int32_t sep_id() const;
  int32_t pad_id() const;
  int32_t unk_id() const;
  // Throws Unsupported if the vocabulary has no [MASK] token.
  int32_t mask_id() const;

  // Number of lines in vocab.txt: ids are 0 .. vocab_size() - 1.
  std::size_t vocab_size() const;
  // The vocabulary entry of `id`; throws InvalidArgument if out of range.
  std::string_view token(int32_t id) const;
  std::optional<int32_t> find(std::string_view token) const;
  // Hugging Face's convert_tokens_to_string: tokens joined by spaces, " ##" removed, trimmed.
  // Special tokens are kept. Throws InvalidArgument for an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids) const;

  const TokenizerOptions& options() const;

 private:
  struct Impl;
  explicit WordPieceTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace octet::text
