// GLUE task definitions and readers for the dataset files the GLUE benchmark and its mirrors
// distribute, plus the plain-text input of `octet predict`.
//
// Usage:
//   const auto ds = octet::data::read_glue(octet::data::Task::mrpc, "glue/MRPC/dev.tsv");
//   for (const auto& ex : ds.examples) tokenize(ex.text_a, ex.text_b);  // ex.label: class id
//   const auto& spec = octet::data::task_spec(ds.task);                    // label names, metric
//
// Layouts: read_glue() recognises each task's layout from the file extension (".jsonl" is JSON
// lines, anything else tab-separated) and the header line; docs/data.md lists every layout
// accepted. TSV is read as GLUE's reference code reads it (tab delimiter, no quoting: a '"' is an
// ordinary character), a leading UTF-8 byte-order mark is dropped and CRLF line ends accepted.
//
// Labels: Example::label holds the class id in TaskSpec::label_names order (the order of the
// Hugging Face `glue` dataset), or the similarity score 0..5 for STS-B. Files may spell a label
// by name ("entailment") or by id ("0"). Test files without a label column give unlabeled
// examples (has_label == false).
//
// Errors: malformed input raises octet::DataError naming the file, the 1-based line, and what
// was expected versus found; an unreadable file raises octet::IoError; an unknown task name
// octet::InvalidArgument.
//
// Threading: all functions are reentrant; the TaskSpec table is immutable.
#pragma once

#include <cstddef>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace octet::data {

enum class Task { sst2, mrpc, cola, stsb, rte, qnli, mnli };

struct TaskSpec {
  Task task;
  std::string_view name;                 // canonical lower-case name: "sst2", "mnli", ...
  int num_labels;                        // 1 for stsb (regression)
  bool regression;                       // stsb only: the label is a score in [0, 5]
  bool pair;                             // sentence-pair task: text_b is used
  std::vector<std::string> label_names;  // in class-id order; empty for stsb
  std::string_view main_metric;          // key of eval::MetricResult::main for this task
};

const TaskSpec& task_spec(Task t);

// Accepts the canonical names and the GLUE folder spellings, case-insensitively: "sst2",
// "SST-2", "sts-b", "MNLI", ... Throws InvalidArgument listing the choices.
Task parse_task(std::string_view name);

// Every task, in GLUE's order of presentation.
const std::vector<Task>& all_tasks();

struct Example {
  std::string text_a;
  std::string text_b;  // empty for single-sentence tasks
  float label = 0;     // class id, or similarity score for stsb
  bool has_label = false;
  std::size_t line = 0;  // 1-based line of the source file
  std::string id;        // the file's own row id (index / idx / pair ids) when it has one
};

struct Dataset {
  Task task;
  std::filesystem::path source;
  std::vector<Example> examples;
  // Rows left out on purpose, as GLUE does: MNLI rows whose gold_label is "-" (no annotator
  // majority). Never used to hide malformed rows, which are errors.
  std::size_t skipped = 0;

  // True when every example carries a label (a non-empty dev or train file).
  bool labeled() const;
};

// Reads one GLUE file of `task`, detecting its layout from the extension and header line.
Dataset read_glue(Task task, const std::filesystem::path& file);

// `octet predict` input: one example per line, "text" or "text_a<TAB>text_b". Blank lines,
// more than two fields and invalid UTF-8 are DataErrors naming `source_name` and the line; a
// byte-order mark and CRLF line ends are tolerated. Examples carry no label.
std::vector<Example> read_text_lines(std::istream& in, const std::string& source_name);

}  // namespace octet::data
