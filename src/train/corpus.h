// The pretraining corpus: gzipped text, one document per line, tokenized with WordPiece and
// packed into fixed-length sequences [CLS] t1 ... t(L-2) [SEP] (documents joined by [SEP], as in
// RoBERTa's FULL-SENTENCES packing, one segment), and BERT's dynamic masking.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "text/wordpiece.h"

namespace octet::train {

// Calls `on_line` for every line of a gzip (or plain) text file, read through zlib, without the
// line terminator. Empty lines are skipped. IoError if the file cannot be opened or is corrupt
// or truncated (names the file and the line reached).
void read_gz_lines(const std::filesystem::path& file,
                   const std::function<void(std::string_view line, std::size_t line_no)>& on_line);

// The corpus files named by `spec`: a file, or a directory (every *.txt.gz and *.txt in it,
// sorted by name). DataError if nothing is found.
std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& spec);

struct PackedCorpus {
  int32_t seq_len = 0;            // L: every sequence has exactly L tokens
  std::vector<int32_t> stream;    // the token stream, documents separated by [SEP]
  std::size_t documents = 0;      // non-empty lines read
  std::size_t bytes = 0;          // UTF-8 bytes read
  std::size_t sequences() const;  // complete sequences in the stream
  // Sequence i as L ids: [CLS] stream[i*(L-2) .. (i+1)*(L-2)) [SEP].
  void sequence(std::size_t i, int32_t* out, int32_t cls, int32_t sep) const;
};

// Reads and tokenizes every file (in order; lines with invalid UTF-8 are a DataError naming file
// and line), in parallel over lines with OpenMP.
PackedCorpus pack_corpus(const std::vector<std::filesystem::path>& files,
                         const text::WordPieceTokenizer& tokenizer, int32_t seq_len);

struct MaskingOptions {
  double mask_prob = 0.15;      // share of non-special positions selected
  double replace_mask = 0.8;    // of the selected: [MASK]
  double replace_random = 0.1;  // of the selected: a random vocabulary token (the rest kept)
};

// BERT's dynamic masking of one batch, deterministic in `seed`: ids [B*L] are modified in place;
// returns the selected flat positions and their original ids (the labels). Special tokens
// ([CLS], [SEP], [PAD]) are never selected; at least one position per batch is.
struct MaskedBatch {
  std::vector<int64_t> positions;
  std::vector<int64_t> labels;
};
MaskedBatch mask_tokens(std::vector<int32_t>& ids, const MaskingOptions& options, uint64_t seed,
                        int32_t mask_id, int32_t vocab_size, const std::vector<int32_t>& specials);

}  // namespace octet::train
