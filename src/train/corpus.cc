#include "train/corpus.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <random>

#include "octet/error.h"

namespace octet::train {

void read_gz_lines(const std::filesystem::path& file,
                   const std::function<void(std::string_view line, std::size_t line_no)>& on_line) {
  gzFile gz = gzopen(file.c_str(), "rb");
  if (!gz) throw IoError(fmt::format("cannot open corpus file {}", file.string()));
  struct Closer {
    gzFile f;
    ~Closer() { gzclose(f); }
  } closer{gz};
  gzbuffer(gz, 1 << 20);
  std::vector<char> buf(1 << 20);
  std::string line;
  std::size_t line_no = 0;
  for (;;) {
    const int n = gzread(gz, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int errnum = 0;
      const char* msg = gzerror(gz, &errnum);
      throw IoError(fmt::format("{}: corrupt gzip data after line {}: {}", file.string(), line_no,
                                msg ? msg : "unknown error"));
    }
    if (n == 0) {
      // gzread returns 0 both at a clean end and on a truncated stream; zlib reports the latter.
      int errnum = 0;
      const char* msg = gzerror(gz, &errnum);
      if (errnum != Z_OK && errnum != Z_STREAM_END)
        throw IoError(fmt::format("{}: truncated or corrupt after line {}: {}", file.string(),
                                  line_no, msg ? msg : "unknown error"));
      break;
    }
    std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
    for (;;) {
      const std::size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        line.append(chunk);
        break;
      }
      line.append(chunk.substr(0, nl));
      chunk.remove_prefix(nl + 1);
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) on_line(line, line_no);
      line.clear();
    }
  }
  if (!line.empty()) on_line(line, ++line_no);
}

std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& spec) {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(spec, ec)) {
    for (const auto& e : std::filesystem::directory_iterator(spec, ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && (name.ends_with(".txt.gz") || name.ends_with(".txt")))
        files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw DataError(
          fmt::format("corpus directory {} has no *.txt.gz or *.txt files", spec.string()));
    return files;
  }
  if (!std::filesystem::is_regular_file(spec, ec))
    throw DataError(
        fmt::format("corpus {} not found (a .txt.gz file or a directory of them)", spec.string()));
  files.push_back(spec);
  return files;
}

std::size_t PackedCorpus::sequences() const {
  return seq_len > 2 ? stream.size() / static_cast<std::size_t>(seq_len - 2) : 0;
}

void PackedCorpus::sequence(std::size_t i, int32_t* out, int32_t cls, int32_t sep) const {
  const std::size_t body = static_cast<std::size_t>(seq_len - 2);
  out[0] = cls;
  std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(i * body), body, out + 1);
  out[seq_len - 1] = sep;
}

PackedCorpus pack_corpus(const std::vector<std::filesystem::path>& files,
                         const text::WordPieceTokenizer& tokenizer, int32_t seq_len) {
  if (seq_len < 8) throw InvalidArgument(fmt::format("sequence length {} < 8", seq_len));
  PackedCorpus corpus;
  corpus.seq_len = seq_len;
  const int32_t sep = tokenizer.sep_id();
  for (const auto& file : files) {
    // Lines of a file, then tokenized in parallel in blocks; order is kept.
    std::vector<std::string> lines;
    std::vector<std::size_t> line_nos;
    read_gz_lines(file, [&](std::string_view line, std::size_t no) {
      lines.emplace_back(line);
      line_nos.push_back(no);
    });
    std::vector<std::vector<int32_t>> ids(lines.size());
    std::string error;
#pragma omp parallel for schedule(dynamic, 16)
    for (std::size_t i = 0; i < lines.size(); ++i) {
      try {
        for (const auto& t : tokenizer.tokenize(lines[i])) ids[i].push_back(t.id);
      } catch (const std::exception& e) {
#pragma omp critical
        if (error.empty()) error = fmt::format("{}:{}: {}", file.string(), line_nos[i], e.what());
      }
    }
    if (!error.empty()) throw DataError(error);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (ids[i].empty()) continue;
      corpus.stream.insert(corpus.stream.end(), ids[i].begin(), ids[i].end());
      corpus.stream.push_back(sep);
      corpus.bytes += lines[i].size();
      ++corpus.documents;
    }
  }
  if (corpus.sequences() == 0)
    throw DataError(fmt::format("the corpus has {} tokens: not one sequence of length {}",
                                corpus.stream.size(), seq_len));
  return corpus;
}

MaskedBatch mask_tokens(std::vector<int32_t>& ids, const MaskingOptions& o, uint64_t seed,
                        int32_t mask_id, int32_t vocab_size, const std::vector<int32_t>& specials) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uniform_int_distribution<int32_t> random_token(0, vocab_size - 1);
  auto special = [&](int32_t id) {
    return std::find(specials.begin(), specials.end(), id) != specials.end();
  };
  MaskedBatch out;
  std::size_t first_candidate = ids.size();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (special(ids[i])) continue;
    if (first_candidate == ids.size()) first_candidate = i;
    if (u(rng) >= o.mask_prob) continue;
    out.positions.push_back(static_cast<int64_t>(i));
    out.labels.push_back(ids[i]);
    const double r = u(rng);
    if (r < o.replace_mask) {
      ids[i] = mask_id;
    } else if (r < o.replace_mask + o.replace_random) {
      ids[i] = random_token(rng);
    }
  }
  if (out.positions.empty() && first_candidate < ids.size()) {
    out.positions.push_back(static_cast<int64_t>(first_candidate));
    out.labels.push_back(ids[first_candidate]);
    ids[first_candidate] = mask_id;
  }
  return out;
}

}  // namespace octet::train
