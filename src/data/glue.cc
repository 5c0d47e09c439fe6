#include "data/glue.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <istream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>

#include "octet/error.h"
#include "text/utf8.h"

namespace octet::data {
namespace {

using Names = std::vector<std::string_view>;

const std::array<TaskSpec, 7>& spec_table() {
  // Label orders are those of the Hugging Face `glue` dataset, which the GLUE TSV ids agree with
  // wherever the files use ids (SST-2, CoLA, MRPC, RTE mirrors).
  static const std::array<TaskSpec, 7> table = {{
      {Task::sst2, "sst2", 2, false, false, {"negative", "positive"}, "accuracy"},
      {Task::mrpc, "mrpc", 2, false, true, {"not_equivalent", "equivalent"}, "acc_and_f1"},
      {Task::cola, "cola", 2, false, false, {"unacceptable", "acceptable"}, "mcc"},
      {Task::stsb, "stsb", 1, true, true, {}, "pearson_and_spearman"},
      {Task::rte, "rte", 2, false, true, {"entailment", "not_entailment"}, "accuracy"},
      {Task::qnli, "qnli", 2, false, true, {"entailment", "not_entailment"}, "accuracy"},
      {Task::mnli, "mnli", 3, false, true, {"entailment", "neutral", "contradiction"}, "accuracy"},
  }};
  return table;
}

// Where each task keeps its fields, by column name (TSV header) or key (JSON lines). The first
// name present wins.
struct FieldNames {
  Names text_a;
  Names text_b;  // empty for single-sentence tasks
  Names label;
  Names id;
  std::string_view example_header;  // shown in "missing column" errors
};

const FieldNames& tsv_fields(Task t) {
  static const FieldNames sst2{{"sentence"}, {}, {"label"}, {"index"}, "sentence<TAB>label"};
  static const FieldNames mrpc{{"#1 String"},
                               {"#2 String"},
                               {"Quality"},
                               {"index"},
                               "Quality<TAB>#1 ID<TAB>#2 ID<TAB>#1 String<TAB>#2 String"};
  static const FieldNames cola{{"sentence"}, {}, {"label"}, {"index"}, "index<TAB>sentence"};
  static const FieldNames stsb{{"sentence1"},
                               {"sentence2"},
                               {"score"},
                               {"index"},
                               "index<TAB>genre<TAB>...<TAB>sentence1<TAB>sentence2<TAB>score"};
  static const FieldNames rte{{"sentence1"},
                              {"sentence2"},
                              {"label"},
                              {"index", "idx"},
                              "index<TAB>sentence1<TAB>sentence2<TAB>label"};
  static const FieldNames qnli{{"question"},
                               {"sentence"},
                               {"label"},
                               {"index", "idx"},
                               "index<TAB>question<TAB>sentence<TAB>label"};
  static const FieldNames mnli{{"sentence1"},
                               {"sentence2"},
                               {"gold_label"},
                               {"index", "pairID"},
                               "index<TAB>...<TAB>sentence1<TAB>sentence2<TAB>...<TAB>gold_label"};
  switch (t) {
    case Task::sst2:
      return sst2;
    case Task::mrpc:
      return mrpc;
    case Task::cola:
      return cola;
    case Task::stsb:
      return stsb;
    case Task::rte:
      return rte;
    case Task::qnli:
      return qnli;
    case Task::mnli:
      return mnli;
  }
  return sst2;
}

// JSON lines: SuperGLUE (premise/hypothesis), MultiNLI (sentence1/sentence2/gold_label) and the
// Hugging Face `glue` dataset exported with to_json (its column names, integer labels).
const FieldNames& jsonl_fields(Task t) {
  static const FieldNames single{{"sentence"}, {}, {"label"}, {"idx", "index", "id"}, ""};
  static const FieldNames sentence_pair{
      {"sentence1"}, {"sentence2"}, {"label"}, {"idx", "index", "id"}, ""};
  static const FieldNames stsb{
      {"sentence1"}, {"sentence2"}, {"label", "score"}, {"idx", "index", "id"}, ""};
  static const FieldNames rte{
      {"premise", "sentence1"}, {"hypothesis", "sentence2"}, {"label"}, {"idx", "index", "id"}, ""};
  static const FieldNames qnli{{"question"}, {"sentence"}, {"label"}, {"idx", "index", "id"}, ""};
  static const FieldNames mnli{{"sentence1", "premise"},
                               {"sentence2", "hypothesis"},
                               {"gold_label", "label"},
                               {"pairID", "idx", "index", "id"},
                               ""};
  switch (t) {
    case Task::sst2:
    case Task::cola:
      return single;
    case Task::mrpc:
      return sentence_pair;
    case Task::stsb:
      return stsb;
    case Task::rte:
      return rte;
    case Task::qnli:
      return qnli;
    case Task::mnli:
      return mnli;
  }
  return single;
}

std::string join(const Names& names, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += sep;
    out += names[i];
  }
  return out;
}

// Long fields are cut so that one bad row cannot flood the terminal.
std::string shown(std::string_view s) {
  constexpr std::size_t kMax = 60;
  if (s.size() <= kMax) return fmt::format("'{}'", s);
  return fmt::format("'{}...' ({} bytes)", s.substr(0, kMax), s.size());
}

std::string read_whole_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    throw IoError(fmt::format("cannot read {}: it is a directory (expected a GLUE data file)",
                              file.string()));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw IoError(fmt::format("cannot open {}: {}", file.string(), std::strerror(errno)));
  }
  // One read of the whole file: the line splitter and the fields then work on views into it.
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  std::string buf;
  if (size > 0) {
    buf.resize(static_cast<std::size_t>(size));
    in.read(buf.data(), size);
  } else {
    buf.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());  // pipes
  }
  if (in.bad() || (size > 0 && in.gcount() != size)) {
    throw IoError(fmt::format("error reading {}: expected {} bytes, read {}", file.string(), size,
                              in.gcount()));
  }
  return buf;
}

// Splits a buffer into lines the way Python's csv module sees them: '\n' ends a line, a '\r'
// before it is dropped, a final line without '\n' counts, and a UTF-8 byte-order mark at the
// very start is not part of the first line.
class LineReader {
 public:
  explicit LineReader(std::string_view buf) : buf_(buf) {
    if (buf_.substr(0, 3) == "\xEF\xBB\xBF") buf_.remove_prefix(3);
  }
  bool next(std::string_view& line) {
    if (pos_ >= buf_.size()) return false;
    const char* start = buf_.data() + pos_;
    const void* nl = std::memchr(start, '\n', buf_.size() - pos_);
    std::size_t len = nl ? static_cast<const char*>(nl) - start : buf_.size() - pos_;
    pos_ += len + 1;
    ++line_no_;
    line = std::string_view(start, len);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  }
  std::size_t line_no() const { return line_no_; }

 private:
  std::string_view buf_;
  std::size_t pos_ = 0;
  std::size_t line_no_ = 0;
};

void split_tabs(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  std::size_t start = 0;
  while (true) {
    std::size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return;
    }
    fields.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

// Decodes a csv field quoted as Python's csv writer quotes it ("a ""b"" c" -> a "b" c).
// Returns false when the field is not exactly one quoted string.
bool unquote_csv_field(std::string_view field, std::string& out) {
  if (field.size() < 2 || field.front() != '"' || field.back() != '"') return false;
  out.clear();
  const std::string_view body = field.substr(1, field.size() - 2);
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '"') {
      if (i + 1 >= body.size() || body[i + 1] != '"') return false;
      ++i;
    }
    out += body[i];
  }
  return true;
}

[[noreturn]] void fail(const std::filesystem::path& file, std::size_t line, std::string_view what) {
  throw DataError(fmt::format("{}:{}: {}", file.string(), line, what));
}

void check_line_utf8(std::string_view line, const std::filesystem::path& file, std::size_t no) {
  if (text::find_invalid_utf8(line) != std::string_view::npos) {
    text::check_utf8(line, fmt::format("{}:{}", file.string(), no));
  }
}

std::string label_choices(const TaskSpec& spec) {
  return fmt::format("one of {} or a class id 0..{}",
                     join(Names(spec.label_names.begin(), spec.label_names.end()), ", "),
                     spec.num_labels - 1);
}

// Parses a class label spelled by name or by id. Returns nullopt when the token is neither.
std::optional<int> class_id(const TaskSpec& spec, std::string_view token) {
  for (std::size_t i = 0; i < spec.label_names.size(); ++i) {
    if (token == spec.label_names[i]) return static_cast<int>(i);
  }
  int id = -1;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), id);
  if (ec == std::errc() && ptr == token.data() + token.size() && id >= 0 && id < spec.num_labels) {
    return id;
  }
  return std::nullopt;
}

float similarity_score(std::string_view token, const std::filesystem::path& file, std::size_t line,
                       std::string_view column) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (token.empty() || ec != std::errc() || ptr != token.data() + token.size() ||
      !std::isfinite(v)) {
    fail(file, line,
         fmt::format("bad similarity score in column '{}': expected a number in "
                     "0..5, found {}",
                     column, shown(token)));
  }
  if (v < 0.0 || v > 5.0) {
    fail(file, line,
         fmt::format("similarity score out of range in column '{}': expected 0..5, "
                     "found {}",
                     column, token));
  }
  return static_cast<float>(v);
}

// Sets ex.label / ex.has_label from a label token, or returns false for MNLI's "-" (no gold label),
// a row GLUE leaves out.
bool set_label(const TaskSpec& spec, std::string_view token, Example& ex,
               const std::filesystem::path& file, std::size_t line, std::string_view column) {
  if (spec.regression) {
    ex.label = similarity_score(token, file, line, column);
  } else if (auto id = class_id(spec, token)) {
    ex.label = static_cast<float>(*id);
  } else if (spec.task == Task::mnli && token == "-") {
    return false;
  } else {
    fail(file, line,
         fmt::format("bad {} label in column '{}': expected {}, found {}", spec.name, column,
                     label_choices(spec), shown(token)));
  }
  ex.has_label = true;
  return true;
}

int find_column(const std::vector<std::string_view>& header, const Names& names) {
  for (auto name : names) {
    auto it = std::find(header.begin(), header.end(), name);
    if (it != header.end()) return static_cast<int>(it - header.begin());
  }
  return -1;
}

struct TsvLayout {
  std::size_t num_columns = 0;
  bool has_header = true;
  int text_a = -1, text_b = -1, label = -1, id = -1;
  int id2 = -1;  // MRPC identifies a pair by two sentence ids, joined as "id1-id2"
  // Files exported from the Hugging Face `glue` dataset (id column "idx", where GLUE's own files
  // say "index") were written by pandas with csv quoting: a field holding '"' is wrapped in
  // quotes with its quotes doubled. GLUE's own files are never quoted.
  bool csv_quoted = false;
  std::vector<std::string> names;
};

TsvLayout tsv_layout(const TaskSpec& spec, const std::vector<std::string_view>& first,
                     const std::filesystem::path& file) {
  TsvLayout layout;
  layout.num_columns = first.size();
  // CoLA's train and dev files have no header: source, label, original label (annotator mark,
  // usually empty), sentence. Its test file has the header "index<TAB>sentence".
  if (spec.task == Task::cola && first[0] != "index") {
    if (first.size() != 4) {
      fail(file, 1,
           fmt::format("CoLA row has {} columns, expected 4 "
                       "(source<TAB>label<TAB>original label<TAB>sentence, no header) "
                       "or a header starting with 'index'",
                       first.size()));
    }
    layout.has_header = false;
    layout.label = 1;
    layout.text_a = 3;
    layout.names = {"source", "label", "original label", "sentence"};
    return layout;
  }
  const FieldNames& f = tsv_fields(spec.task);
  layout.text_a = find_column(first, f.text_a);
  layout.text_b = f.text_b.empty() ? -1 : find_column(first, f.text_b);
  layout.label = find_column(first, f.label);
  layout.id = find_column(first, f.id);
  if (spec.task == Task::mrpc && layout.id < 0) {
    layout.id = find_column(first, {"#1 ID"});
    layout.id2 = find_column(first, {"#2 ID"});
    if (layout.id2 < 0) layout.id = -1;
  }
  Names missing;
  if (layout.text_a < 0) missing.push_back(f.text_a.front());
  if (!f.text_b.empty() && layout.text_b < 0) missing.push_back(f.text_b.front());
  if (!missing.empty()) {
    Names found(first.begin(), first.end());
    fail(
        file, 1,
        fmt::format("header lacks column {} needed for {} (expected a header like "
                    "{}; found {})",
                    join(missing, ", "), spec.name, f.example_header, shown(join(found, "<TAB>"))));
  }
  layout.csv_quoted = find_column(first, {"idx"}) >= 0 && find_column(first, {"index"}) < 0;
  for (auto name : first) layout.names.emplace_back(name);
  return layout;
}

Dataset read_tsv(const TaskSpec& spec, const std::filesystem::path& file, std::string_view buf,
                 Dataset ds) {
  LineReader lines(buf);
  std::string_view line;
  std::vector<std::string_view> fields;
  if (!lines.next(line)) fail(file, 1, "empty file: expected a header line and examples");
  check_line_utf8(line, file, 1);
  split_tabs(line, fields);
  const TsvLayout layout = tsv_layout(spec, fields, file);

  // Text fields, undoing csv quoting where the layout has it.
  auto text = [&](int column, std::string& out, std::size_t no) {
    const std::string_view field = fields[column];
    if (!layout.csv_quoted || field.empty() || field.front() != '"') {
      out.assign(field);
      return;
    }
    if (!unquote_csv_field(field, out)) {
      fail(file, no,
           fmt::format("malformed quoted field in column '{}': expected \"text\" with "
                       "inner quotes doubled (csv quoting of Hugging Face exports), "
                       "found {}",
                       layout.names[column], shown(field)));
    }
  };

  auto parse_row = [&](std::size_t no) {
    if (fields.size() != layout.num_columns) {
      fail(file, no,
           fmt::format("wrong number of columns: expected {}, found {}{}", layout.num_columns,
                       fields.size(), line.empty() ? " (empty line)" : ""));
    }
    Example ex;
    ex.line = no;
    text(layout.text_a, ex.text_a, no);
    if (layout.text_b >= 0) text(layout.text_b, ex.text_b, no);
    if (layout.id >= 0) {
      ex.id.assign(fields[layout.id]);
      if (layout.id2 >= 0) {
        ex.id += '-';
        ex.id.append(fields[layout.id2]);
      }
    }
    if (layout.label >= 0 &&
        !set_label(spec, fields[layout.label], ex, file, no, layout.names[layout.label])) {
      ++ds.skipped;
      return;
    }
    ds.examples.push_back(std::move(ex));
  };

  if (!layout.has_header) parse_row(1);
  while (lines.next(line)) {
    check_line_utf8(line, file, lines.line_no());
    split_tabs(line, fields);
    parse_row(lines.line_no());
  }
  if (ds.examples.empty() && ds.skipped == 0) {
    fail(file, lines.line_no(), "no examples: the file holds only a header line");
  }
  return ds;
}

// The value of the first key of `names` present in `obj` (nullptr if none), and that key.
const nlohmann::json* find_key(const nlohmann::json& obj, const Names& names,
                               std::string_view* found = nullptr) {
  for (auto name : names) {
    auto it = obj.find(name);
    if (it != obj.end()) {
      if (found != nullptr) *found = name;
      return &*it;
    }
  }
  return nullptr;
}

Dataset read_jsonl(const TaskSpec& spec, const std::filesystem::path& file, std::string_view buf,
                   Dataset ds) {
  const FieldNames& f = jsonl_fields(spec.task);
  LineReader lines(buf);
  std::string_view line;
  while (lines.next(line)) {
    const std::size_t no = lines.line_no();
    check_line_utf8(line, file, no);
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      fail(file, no, "empty line: expected one JSON object per line");
    }
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      // e.byte is 1-based within the line; the library's text names the token it expected.
      std::string_view detail = e.what();
      if (auto colon = detail.find(": "); colon != std::string_view::npos) {
        detail.remove_prefix(colon + 2);
      }
      fail(file, no,
           fmt::format("malformed JSON at column {}: {} (expected one JSON object per "
                       "line)",
                       e.byte, detail));
    }
    if (!obj.is_object()) {
      fail(file, no, fmt::format("expected a JSON object, found a JSON {}", obj.type_name()));
    }
    Example ex;
    ex.line = no;
    auto text = [&](const Names& names, std::string& out) {
      const nlohmann::json* v = find_key(obj, names);
      if (v == nullptr) {
        fail(file, no,
             fmt::format("missing key {} needed for {} (expected one of: {})", names.front(),
                         spec.name, join(names, ", ")));
      }
      if (!v->is_string()) {
        fail(file, no,
             fmt::format("key '{}' must be a string, found a JSON {}", names.front(),
                         v->type_name()));
      }
      out = v->get<std::string>();
    };
    text(f.text_a, ex.text_a);
    if (!f.text_b.empty()) text(f.text_b, ex.text_b);
    if (const nlohmann::json* id = find_key(obj, f.id)) {
      ex.id = id->is_string() ? id->get<std::string>() : id->dump();
    }
    std::string_view column;
    const nlohmann::json* label = find_key(obj, f.label, &column);
    // A missing or null label, or the Hugging Face test-split marker -1, means unlabeled.
    bool keep = true;
    if (label != nullptr && !label->is_null() &&
        !(label->is_number_integer() && label->get<long long>() == -1)) {
      std::string token;
      if (label->is_string()) {
        token = label->get<std::string>();
      } else if (label->is_number()) {
        token = label->dump();
      } else if (label->is_boolean()) {
        token = label->get<bool>() ? "1" : "0";
      } else {
        fail(
            file, no,
            fmt::format("label must be a string or a number, found a JSON {}", label->type_name()));
      }
      keep = set_label(spec, token, ex, file, no, column);
    }
    if (keep) {
      ds.examples.push_back(std::move(ex));
    } else {
      ++ds.skipped;
    }
  }
  if (lines.line_no() == 0) fail(file, 1, "empty file: expected one JSON object per line");
  return ds;
}

std::string normalized_task_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '-' || c == '_') continue;
    out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return out;
}

}  // namespace

const TaskSpec& task_spec(Task t) {
  for (const auto& s : spec_table()) {
    if (s.task == t) return s;
  }
  throw InvalidArgument(fmt::format("unknown task id {}", static_cast<int>(t)));
}

Task parse_task(std::string_view name) {
  const std::string key = normalized_task_name(name);
  for (const auto& s : spec_table()) {
    if (key == s.name) return s.task;
  }
  Names choices;
  for (Task t : all_tasks()) choices.push_back(task_spec(t).name);
  throw InvalidArgument(
      fmt::format("unknown GLUE task {} (expected one of: {}; case, '-' and '_' "
                  "are ignored, so 'SST-2' works)",
                  shown(name), join(choices, ", ")));
}

const std::vector<Task>& all_tasks() {
  static const std::vector<Task> tasks = {Task::cola, Task::sst2, Task::mrpc, Task::stsb,
                                          Task::mnli, Task::qnli, Task::rte};
  return tasks;
}

bool Dataset::labeled() const {
  return !examples.empty() && std::all_of(examples.begin(), examples.end(),
                                          [](const Example& e) { return e.has_label; });
}

Dataset read_glue(Task task, const std::filesystem::path& file) {
  const TaskSpec& spec = task_spec(task);
  const std::string buf = read_whole_file(file);
  Dataset ds{task, file, {}, 0};
  if (file.extension() == ".jsonl") return read_jsonl(spec, file, buf, std::move(ds));
  return read_tsv(spec, file, buf, std::move(ds));
}

std::vector<Example> read_text_lines(std::istream& in, const std::string& source_name) {
  const std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError(fmt::format("error reading {}", source_name));
  const std::filesystem::path source(source_name);
  LineReader lines(buf);
  std::string_view line;
  std::vector<std::string_view> fields;
  std::vector<Example> out;
  while (lines.next(line)) {
    const std::size_t no = lines.line_no();
    check_line_utf8(line, source, no);
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      fail(source, no, "blank line: expected text, or text_a<TAB>text_b");
    }
    split_tabs(line, fields);
    if (fields.size() > 2) {
      fail(source, no,
           fmt::format("expected text, or text_a<TAB>text_b, found {} tab-separated "
                       "fields",
                       fields.size()));
    }
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].find_first_not_of(' ') == std::string_view::npos) {
        fail(source, no,
             fmt::format("empty {} in text_a<TAB>text_b", i == 0 ? "text_a" : "text_b"));
      }
    }
    Example ex;
    ex.line = no;
    ex.text_a.assign(fields[0]);
    if (fields.size() == 2) ex.text_b.assign(fields[1]);
    out.push_back(std::move(ex));
  }
  if (out.empty()) fail(source, 1, "no input: expected one example per line");
  return out;
}

}  // namespace octet::data
