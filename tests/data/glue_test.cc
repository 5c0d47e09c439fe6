// GLUE readers: every real shared file, the fixture layouts of QNLI and MNLI, and one test per
// kind of malformed input with the message it must produce.
#include "data/glue.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <sstream>

#include "common/test_support.h"
#include "octet/error.h"

namespace octet::data {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::filesystem::path fixture(const std::string& relative) {
  return std::filesystem::path(OCTET_SOURCE_DIR) / "tests" / "fixtures" / "data" / relative;
}

// Runs `fn`, expects an exception of type E, and returns its message for further checks.
template <typename E>
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a different exception type, got: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected an exception, none was thrown";
  return {};
}

// Writes `contents` to a file named `name` in a fresh temporary directory and reads it as `task`.
class ReadGlueFile {
 public:
  Dataset operator()(Task task, const std::string& name, const std::string& contents) {
    path_ = dir_ / name;
    test::write_file(path_, contents);
    return read_glue(task, path_);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  test::TempDir dir_;
  std::filesystem::path path_;
};

std::string data_error(Task task, const std::string& name, const std::string& contents) {
  ReadGlueFile read;
  return error_of<DataError>([&] { read(task, name, contents); });
}

std::size_t count_label(const Dataset& ds, float label) {
  std::size_t n = 0;
  for (const auto& ex : ds.examples) n += ex.label == label;
  return n;
}

// ---- task table ----

TEST(TaskSpecTest, ParsesCanonicalAndGlueFolderSpellings) {
  EXPECT_EQ(parse_task("sst2"), Task::sst2);
  EXPECT_EQ(parse_task("SST-2"), Task::sst2);
  EXPECT_EQ(parse_task("sts-b"), Task::stsb);
  EXPECT_EQ(parse_task("STS_B"), Task::stsb);
  EXPECT_EQ(parse_task("CoLA"), Task::cola);
  EXPECT_EQ(parse_task("MNLI"), Task::mnli);
  for (Task t : all_tasks()) EXPECT_EQ(parse_task(task_spec(t).name), t);
}

TEST(TaskSpecTest, RejectsUnknownTaskListingTheChoices) {
  const std::string msg = error_of<InvalidArgument>([] { parse_task("qqp"); });
  EXPECT_THAT(msg,
              AllOf(HasSubstr("'qqp'"), HasSubstr("sst2"), HasSubstr("mnli"), HasSubstr("stsb")));
}

TEST(TaskSpecTest, DescribesLabelsAndMetricsOfEveryTask) {
  EXPECT_EQ(all_tasks().size(), 7u);
  const auto& mnli = task_spec(Task::mnli);
  EXPECT_EQ(mnli.num_labels, 3);
  EXPECT_EQ(mnli.label_names, (std::vector<std::string>{"entailment", "neutral", "contradiction"}));
  EXPECT_TRUE(mnli.pair);
  const auto& stsb = task_spec(Task::stsb);
  EXPECT_TRUE(stsb.regression);
  EXPECT_EQ(stsb.num_labels, 1);
  EXPECT_EQ(task_spec(Task::cola).main_metric, "mcc");
  EXPECT_EQ(task_spec(Task::mrpc).main_metric, "acc_and_f1");
  EXPECT_FALSE(task_spec(Task::sst2).pair);
  EXPECT_EQ(task_spec(Task::rte).label_names[0], "entailment");
}

// ---- real shared files ----

TEST(ReadGlueSharedTest, Sst2DevHas872RowsWithTrailingSpacesKept) {
  const auto ds = read_glue(Task::sst2, test::require_data("glue/SST-2/dev.tsv"));
  ASSERT_EQ(ds.examples.size(), 872u);
  EXPECT_TRUE(ds.labeled());
  EXPECT_EQ(ds.skipped, 0u);
  const auto& first = ds.examples[0];
  EXPECT_EQ(first.text_a, "it 's a charming and often affecting journey . ");
  EXPECT_EQ(first.text_b, "");
  EXPECT_EQ(first.label, 1);
  EXPECT_EQ(first.line, 2u);
  EXPECT_EQ(ds.examples[1].text_a, "unflinchingly bleak and desperate ");
  EXPECT_EQ(ds.examples[1].label, 0);
  EXPECT_EQ(ds.examples.back().line, 873u);
  EXPECT_EQ(count_label(ds, 0) + count_label(ds, 1), 872u);
  EXPECT_EQ(count_label(ds, 1), 444u);
}

TEST(ReadGlueSharedTest, Sst2TrainHas67349Rows) {
  const auto ds = read_glue(Task::sst2, test::require_data("glue/SST-2/train.tsv"));
  ASSERT_EQ(ds.examples.size(), 67349u);
  EXPECT_TRUE(ds.labeled());
  EXPECT_EQ(ds.examples[0].text_a, "hide new secretions from the parental units ");
}

TEST(ReadGlueSharedTest, MrpcDevHas408PairsAndKeepsQuotesVerbatim) {
  const auto ds = read_glue(Task::mrpc, test::require_data("glue/MRPC/dev.tsv"));
  ASSERT_EQ(ds.examples.size(), 408u);
  EXPECT_TRUE(ds.labeled());
  const auto& first = ds.examples[0];
  EXPECT_EQ(first.label, 1);
  EXPECT_EQ(first.id, "1355540-1355592");
  EXPECT_EQ(first.text_a,
            "He said the foodservice pie business doesn't fit the company's long-term growth "
            "strategy.");
  // No quoting: the leading '"' (unbalanced in the original) stays part of the text.
  EXPECT_EQ(first.text_b,
            "\"The foodservice pie business does not fit our long-term growth "
            "strategy.");
  EXPECT_EQ(ds.examples[1].label, 0);
  EXPECT_EQ(count_label(ds, 1), 279u);
}

TEST(ReadGlueSharedTest, MrpcTrainAndUnlabeledTestParse) {
  const auto train = read_glue(Task::mrpc, test::require_data("glue/MRPC/train.tsv"));
  EXPECT_EQ(train.examples.size(), 3668u);
  EXPECT_TRUE(train.labeled());
  const auto test = read_glue(Task::mrpc, test::require_data("glue/MRPC/test.tsv"));
  ASSERT_EQ(test.examples.size(), 1725u);
  EXPECT_FALSE(test.labeled());
  EXPECT_FALSE(test.examples[0].has_label);
  EXPECT_EQ(test.examples[0].id, "0");
  EXPECT_EQ(test.examples[0].text_a.substr(0, 28), "PCCW's chief operating offic");
}

TEST(ReadGlueSharedTest, ColaDevHas1043RowsWithoutHeaderOrFinalNewline) {
  const auto ds = read_glue(Task::cola, test::require_data("glue/CoLA/dev.tsv"));
  ASSERT_EQ(ds.examples.size(), 1043u);
  EXPECT_TRUE(ds.labeled());
  EXPECT_EQ(ds.examples[0].text_a, "The sailors rode the breeze clear of the rocks.");
  EXPECT_EQ(ds.examples[0].label, 1);
  EXPECT_EQ(ds.examples[0].line, 1u);
  EXPECT_EQ(ds.examples.back().text_a, "John talked to Bill about himself.");
  EXPECT_EQ(ds.examples.back().line, 1043u);
  EXPECT_EQ(count_label(ds, 0), 322u);
}

TEST(ReadGlueSharedTest, ColaTrainHas8551Rows) {
  const auto ds = read_glue(Task::cola, test::require_data("glue/CoLA/train.tsv"));
  EXPECT_EQ(ds.examples.size(), 8551u);
  EXPECT_TRUE(ds.labeled());
}

TEST(ReadGlueSharedTest, StsbDevHas1500ScoredPairs) {
  const auto ds = read_glue(Task::stsb, test::require_data("glue/STS-B/dev.tsv"));
  ASSERT_EQ(ds.examples.size(), 1500u);
  EXPECT_TRUE(ds.labeled());
  EXPECT_EQ(ds.examples[0].text_a, "A man with a hard hat is dancing.");
  EXPECT_EQ(ds.examples[0].text_b, "A man wearing a hard hat is dancing.");
  EXPECT_FLOAT_EQ(ds.examples[0].label, 5.0f);
  EXPECT_FLOAT_EQ(ds.examples[1].label, 4.75f);
  EXPECT_EQ(ds.examples[1].id, "1");
  for (const auto& ex : ds.examples) {
    ASSERT_GE(ex.label, 0.0f) << "line " << ex.line;
    ASSERT_LE(ex.label, 5.0f) << "line " << ex.line;
  }
}

TEST(ReadGlueSharedTest, StsbTrainHas5749Rows) {
  const auto ds = read_glue(Task::stsb, test::require_data("glue/STS-B/train.tsv"));
  EXPECT_EQ(ds.examples.size(), 5749u);
  EXPECT_FLOAT_EQ(ds.examples[1].label, 3.8f);
}

TEST(ReadGlueSharedTest, RteDevHas277RowsWithNumericLabels) {
  const auto ds = read_glue(Task::rte, test::require_data("glue/RTE/dev.tsv"));
  ASSERT_EQ(ds.examples.size(), 277u);
  EXPECT_TRUE(ds.labeled());
  EXPECT_EQ(ds.examples[0].text_b, "Christopher Reeve had an accident.");
  EXPECT_EQ(ds.examples[0].label, 1);  // not_entailment
  EXPECT_EQ(ds.examples[1].label, 0);  // entailment
  EXPECT_EQ(ds.examples[0].id, "0");
  const auto train = read_glue(Task::rte, test::require_data("glue/RTE/train.tsv"));
  EXPECT_EQ(train.examples.size(), 2490u);
}

std::string without_quotes(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '"'), s.end());
  return s;
}

TEST(ReadGlueSharedTest, RteTsvUndoesCsvQuotingOfHuggingFaceExport) {
  // This RTE file is a Hugging Face export (column "idx") written with csv quoting.
  const auto ds = read_glue(Task::rte, test::require_data("glue/RTE/dev.tsv"));
  const auto& amish = ds.examples[3];
  EXPECT_EQ(amish.text_a.substr(0, 20), "The Amish community ");
  EXPECT_NE(amish.text_a.find("shattered. \"If someone snaps"), std::string::npos);
  EXPECT_EQ(amish.text_a.back(), '.');
  EXPECT_EQ(ds.examples[23].text_b,
            "\"The Osbournes\" is the name of a reality show starring Ozzy Osbourne.");
}

TEST(ReadGlueSharedTest, RteSuperGlueJsonlMatchesTheTsvRowForRow) {
  const auto tsv = read_glue(Task::rte, test::require_data("glue/RTE/dev.tsv"));
  const auto jsonl = read_glue(Task::rte, test::require_data("glue/RTE/val.superglue.jsonl"));
  ASSERT_EQ(jsonl.examples.size(), 277u);
  ASSERT_EQ(tsv.examples.size(), jsonl.examples.size());
  EXPECT_TRUE(jsonl.labeled());
  std::size_t identical = 0;
  for (std::size_t i = 0; i < tsv.examples.size(); ++i) {
    const auto& a = tsv.examples[i];
    const auto& b = jsonl.examples[i];
    ASSERT_EQ(a.label, b.label) << "row " << i;
    ASSERT_EQ(a.id, b.id) << "row " << i;
    ASSERT_EQ(b.line, i + 1);
    identical += a.text_a == b.text_a && a.text_b == b.text_b;
    // SuperGLUE built its jsonl by reading GLUE's unquoted TSV with csv quoting on, which ate
    // the quotes of fields that begin with '"' ("The Osbournes" is ... -> The Osbournes is ...).
    // Apart from those quote characters the texts agree.
    ASSERT_EQ(without_quotes(a.text_a), without_quotes(b.text_a)) << "row " << i;
    ASSERT_EQ(without_quotes(a.text_b), without_quotes(b.text_b)) << "row " << i;
  }
  EXPECT_EQ(identical, 271u);  // rows 23, 137, 147, 182, 207, 262 differ only in quotes
}

// ---- fixture layouts (tests/fixtures/data) ----

TEST(ReadGlueLayoutTest, ReadsQnliGlueLayoutWithNamedLabels) {
  const auto ds = read_glue(Task::qnli, fixture("QNLI/dev.tsv"));
  ASSERT_EQ(ds.examples.size(), 5u);
  EXPECT_EQ(ds.examples[0].text_a, "What came into force after the new constitution was herald?");
  EXPECT_EQ(ds.examples[0].label, 0);
  EXPECT_EQ(ds.examples[1].label, 1);
  EXPECT_EQ(ds.examples[2].text_a, "How many \"official\" languages does the country have?");
  EXPECT_EQ(ds.examples[4].text_a,
            "Who designed the cathedral's fa\xC3\xA7"
            "ade?");
  const auto test = read_glue(Task::qnli, fixture("QNLI/test.tsv"));
  EXPECT_EQ(test.examples.size(), 2u);
  EXPECT_FALSE(test.labeled());
}

TEST(ReadGlueLayoutTest, ReadsMnliGlueLayoutByColumnName) {
  const auto ds = read_glue(Task::mnli, fixture("MNLI/dev_matched.tsv"));
  ASSERT_EQ(ds.examples.size(), 4u);
  EXPECT_EQ(ds.examples[0].text_a, "The new rights are nice enough");
  EXPECT_EQ(ds.examples[0].text_b, "Everyone really likes the newest benefits ");
  EXPECT_EQ(ds.examples[0].label, 1);  // neutral
  EXPECT_EQ(ds.examples[1].label, 2);  // contradiction
  EXPECT_EQ(ds.examples[2].label, 0);  // entailment
  EXPECT_EQ(ds.examples[0].id, "0");
}

TEST(ReadGlueLayoutTest, MnliJsonlSkipsAndCountsRowsWithoutGoldLabel) {
  const auto ds = read_glue(Task::mnli, fixture("MNLI/multinli_1.0_dev_matched.jsonl"));
  ASSERT_EQ(ds.examples.size(), 4u);
  EXPECT_EQ(ds.skipped, 1u);
  EXPECT_TRUE(ds.labeled());
  EXPECT_EQ(ds.examples[0].id, "63735n");
  EXPECT_EQ(ds.examples[0].label, 1);
  EXPECT_EQ(ds.examples[2].line, 4u);  // line 3 was the skipped one
  const auto tsv = read_glue(Task::mnli, fixture("MNLI/dev_matched.tsv"));
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(ds.examples[i].text_a, tsv.examples[i].text_a);
    EXPECT_EQ(ds.examples[i].label, tsv.examples[i].label);
  }
}

TEST(ReadGlueLayoutTest, MnliTsvSkipsDashGoldLabel) {
  ReadGlueFile read;
  const auto ds = read(Task::mnli, "train.tsv",
                       "index\tsentence1\tsentence2\tgold_label\n"
                       "0\tA\tB\t-\n"
                       "1\tC\tD\tneutral\n");
  ASSERT_EQ(ds.examples.size(), 1u);
  EXPECT_EQ(ds.skipped, 1u);
  EXPECT_EQ(ds.examples[0].line, 3u);
}

TEST(ReadGlueLayoutTest, ReadsOriginalGlueRteLayout) {
  ReadGlueFile read;
  const auto ds = read(Task::rte, "dev.tsv",
                       "index\tsentence1\tsentence2\tlabel\n"
                       "0\tDana Reeve died.\tReeve had an accident.\tnot_entailment\n"
                       "1\tBacteria mutate.\tBacteria win.\tentailment\n");
  ASSERT_EQ(ds.examples.size(), 2u);
  EXPECT_EQ(ds.examples[0].label, 1);
  EXPECT_EQ(ds.examples[1].label, 0);
  EXPECT_EQ(ds.examples[1].text_a, "Bacteria mutate.");
}

TEST(ReadGlueLayoutTest, ReadsGlueTestLayoutsAsUnlabeled) {
  ReadGlueFile read;
  auto cola = read(Task::cola, "test.tsv", "index\tsentence\n0\tBill whistled past the house.\n");
  ASSERT_EQ(cola.examples.size(), 1u);
  EXPECT_FALSE(cola.labeled());
  EXPECT_EQ(cola.examples[0].text_a, "Bill whistled past the house.");
  auto sst = read(Task::sst2, "test.tsv", "index\tsentence\n0\tuneasy mishmash of styles\n");
  EXPECT_FALSE(sst.labeled());
  auto stsb = read(Task::stsb, "test.tsv",
                   "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                   "sentence2\n0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl is "
                   "styling her hair.\tA girl is brushing her hair.\n");
  ASSERT_EQ(stsb.examples.size(), 1u);
  EXPECT_FALSE(stsb.labeled());
  EXPECT_EQ(stsb.examples[0].text_b, "A girl is brushing her hair.");
}

TEST(ReadGlueLayoutTest, AcceptsCrlfAndByteOrderMark) {
  ReadGlueFile read;
  const auto ds = read(Task::sst2, "dev.tsv", "\xEF\xBB\xBFsentence\tlabel\r\ngood\t1\r\nbad\t0");
  ASSERT_EQ(ds.examples.size(), 2u);
  EXPECT_EQ(ds.examples[0].text_a, "good");
  EXPECT_EQ(ds.examples[1].label, 0);
}

TEST(ReadGlueLayoutTest, ReadsHuggingFaceJsonlWithIntegerLabels) {
  ReadGlueFile read;
  const auto ds = read(Task::stsb, "validation.jsonl",
                       "{\"sentence1\":\"a\",\"sentence2\":\"b\",\"label\":4.25,\"idx\":0}\n"
                       "{\"sentence1\":\"c\",\"sentence2\":\"d\",\"label\":-1,\"idx\":1}\n");
  ASSERT_EQ(ds.examples.size(), 2u);
  EXPECT_FLOAT_EQ(ds.examples[0].label, 4.25f);
  EXPECT_EQ(ds.examples[0].id, "0");
  EXPECT_FALSE(ds.examples[1].has_label);  // -1 marks the unlabeled test split
  const auto sst = read(Task::sst2, "train.jsonl", "{\"sentence\":\"fine\",\"label\":1}\n");
  EXPECT_EQ(sst.examples[0].label, 1);
}

// ---- malformed input: one test per error ----

TEST(ReadGlueErrorTest, RejectsWrongColumnCountWithLine) {
  const std::string msg =
      data_error(Task::sst2, "dev.tsv", "sentence\tlabel\ngood\t1\nbad\t0\textra\n");
  EXPECT_THAT(msg, AllOf(HasSubstr("dev.tsv:3"), HasSubstr("expected 2"), HasSubstr("found 3")));
}

TEST(ReadGlueErrorTest, RejectsBlankLineInsideTsv) {
  const std::string msg = data_error(Task::sst2, "dev.tsv", "sentence\tlabel\ngood\t1\n\nbad\t0\n");
  EXPECT_THAT(msg, AllOf(HasSubstr("dev.tsv:3"), HasSubstr("empty line")));
}

TEST(ReadGlueErrorTest, RejectsUnknownLabelListingValidOnes) {
  const std::string msg =
      data_error(Task::rte, "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentails\n");
  EXPECT_THAT(msg, AllOf(HasSubstr("dev.tsv:2"), HasSubstr("'entails'"),
                         HasSubstr("entailment, not_entailment"), HasSubstr("0..1")));
}

TEST(ReadGlueErrorTest, RejectsClassIdOutOfRange) {
  const std::string msg = data_error(Task::sst2, "dev.tsv", "sentence\tlabel\ngood\t2\n");
  EXPECT_THAT(msg, AllOf(HasSubstr("dev.tsv:2"), HasSubstr("'2'"), HasSubstr("negative")));
}

TEST(ReadGlueErrorTest, RejectsColaLabelThatIsNotAnId) {
  const std::string msg = data_error(Task::cola, "dev.tsv", "gj04\t1\t\tFine.\ngj04\tx\t*\tBad.\n");
  EXPECT_THAT(msg, AllOf(HasSubstr("dev.tsv:2"), HasSubstr("'x'"), HasSubstr("acceptable")));
}

TEST(ReadGlueErrorTest, RejectsScoreThatIsNotAFiniteNumber) {
  const std::string header = "index\tsentence1\tsentence2\tscore\n";
  for (const char* bad : {"abc", "nan", "inf", "", "4.0x"}) {
    // Built with fmt: GCC 12 gives a -Wrestrict false positive on `"'" + std::string(...)`.
    const std::string msg =
        data_error(Task::stsb, "dev.tsv", fmt::format("{}0\ta\tb\t{}\n", header, bad));
    EXPECT_THAT(
        msg, AllOf(HasSubstr("dev.tsv:2"), HasSubstr("0..5"), HasSubstr(fmt::format("'{}'", bad))))
        << bad;
  }
}

TEST(ReadGlueErrorTest, RejectsScoreOutsideZeroToFive) {
  const std::string header = "index\tsentence1\tsentence2\tscore\n";
  EXPECT_THAT(data_error(Task::stsb, "dev.tsv", header + "0\ta\tb\t5.5\n"),
              AllOf(HasSubstr("out of range"), HasSubstr("found 5.5")));
  EXPECT_THAT(data_error(Task::stsb, "dev.tsv", header + "0\ta\tb\t-0.25\n"),
              AllOf(HasSubstr("out of range"), HasSubstr("found -0.25")));
}

TEST(ReadGlueErrorTest, RejectsInvalidUtf8NamingFileAndLine) {
  const std::string msg =
      data_error(Task::sst2, "dev.tsv", "sentence\tlabel\ngood\t1\nbad \xC3\x28 text\t0\n");
  EXPECT_THAT(msg, AllOf(HasSubstr("dev.tsv:3"), HasSubstr("invalid UTF-8"), HasSubstr("0xc3")));
}

TEST(ReadGlueErrorTest, RejectsEmptyFile) {
  EXPECT_THAT(data_error(Task::sst2, "dev.tsv", ""), HasSubstr("empty file"));
  EXPECT_THAT(data_error(Task::cola, "dev.tsv", ""), HasSubstr("empty file"));
  EXPECT_THAT(data_error(Task::rte, "val.jsonl", ""), HasSubstr("empty file"));
}

TEST(ReadGlueErrorTest, RejectsHeaderOnlyFile) {
  EXPECT_THAT(data_error(Task::sst2, "dev.tsv", "sentence\tlabel\n"),
              AllOf(HasSubstr("dev.tsv:1"), HasSubstr("no examples")));
}

TEST(ReadGlueErrorTest, RejectsHeaderMissingNeededColumns) {
  // An RTE file handed to the SST-2 reader.
  const std::string msg =
      data_error(Task::sst2, "dev.tsv", "sentence1\tsentence2\tlabel\tidx\na\tb\t0\t0\n");
  EXPECT_THAT(msg, AllOf(HasSubstr("dev.tsv:1"), HasSubstr("lacks column sentence"),
                         HasSubstr("sentence<TAB>label"), HasSubstr("sentence1<TAB>sentence2")));
  // A headerless file: its first row is taken as the header and lacks the names.
  EXPECT_THAT(data_error(Task::mrpc, "dev.tsv", "1\t1\t2\tx\ty\n"),
              AllOf(HasSubstr("#1 String, #2 String"), HasSubstr("Quality")));
}

TEST(ReadGlueErrorTest, RejectsColaRowWithWrongColumnCount) {
  EXPECT_THAT(data_error(Task::cola, "dev.tsv", "gj04\t1\tFine.\n"),
              AllOf(HasSubstr("dev.tsv:1"), HasSubstr("3 columns, expected 4")));
  EXPECT_THAT(data_error(Task::cola, "dev.tsv", "gj04\t1\t\tFine.\ngj04\t1\tFine.\n"),
              AllOf(HasSubstr("dev.tsv:2"), HasSubstr("expected 4, found 3")));
}

TEST(ReadGlueErrorTest, RejectsMalformedJsonLine) {
  const std::string msg =
      data_error(Task::rte, "val.jsonl",
                 "{\"premise\":\"a\",\"hypothesis\":\"b\",\"label\":\"entailment\"}\n"
                 "{\"premise\":\"a\",\"hypothesis\":\n");
  EXPECT_THAT(msg, AllOf(HasSubstr("val.jsonl:2"), HasSubstr("malformed JSON")));
  EXPECT_THAT(data_error(Task::rte, "val.jsonl", "[1, 2]\n"),
              AllOf(HasSubstr("val.jsonl:1"), HasSubstr("expected a JSON object, found a JSON "
                                                        "array")));
}

TEST(ReadGlueErrorTest, RejectsJsonLineMissingTextKey) {
  const std::string msg =
      data_error(Task::rte, "val.jsonl", "{\"premise\":\"a\",\"label\":\"entailment\"}\n");
  EXPECT_THAT(msg, AllOf(HasSubstr("val.jsonl:1"), HasSubstr("missing key hypothesis"),
                         HasSubstr("hypothesis, sentence2")));
}

TEST(ReadGlueErrorTest, RejectsJsonLabelOfWrongKind) {
  EXPECT_THAT(data_error(Task::rte, "val.jsonl",
                         "{\"premise\":\"a\",\"hypothesis\":\"b\",\"label\":\"maybe\"}\n"),
              AllOf(HasSubstr("val.jsonl:1"), HasSubstr("'maybe'"), HasSubstr("not_entailment")));
  EXPECT_THAT(data_error(Task::rte, "val.jsonl",
                         "{\"premise\":\"a\",\"hypothesis\":\"b\",\"label\":[0]}\n"),
              HasSubstr("found a JSON array"));
  EXPECT_THAT(data_error(Task::rte, "val.jsonl", "{\"premise\":1,\"hypothesis\":\"b\"}\n"),
              HasSubstr("must be a string"));
}

TEST(ReadGlueErrorTest, RejectsBlankJsonLine) {
  EXPECT_THAT(data_error(Task::rte, "val.jsonl",
                         "{\"premise\":\"a\",\"hypothesis\":\"b\"}\n\n"
                         "{\"premise\":\"a\",\"hypothesis\":\"b\"}\n"),
              AllOf(HasSubstr("val.jsonl:2"), HasSubstr("empty line")));
}

TEST(ReadGlueErrorTest, RejectsMissingFileWithIoError) {
  const std::string msg =
      error_of<IoError>([] { read_glue(Task::sst2, "/nonexistent/octet/dev.tsv"); });
  EXPECT_THAT(msg, HasSubstr("/nonexistent/octet/dev.tsv"));
  test::TempDir dir;
  EXPECT_THAT(error_of<IoError>([&] { read_glue(Task::sst2, dir.path()); }),
              HasSubstr("directory"));
}

TEST(ReadGlueErrorTest, RejectsMalformedCsvQuotingInHuggingFaceExport) {
  const std::string header = "sentence1\tsentence2\tlabel\tidx\n";
  EXPECT_THAT(
      data_error(Task::rte, "dev.tsv", header + "\"unclosed\tb\t0\t0\n"),
      AllOf(HasSubstr("dev.tsv:2"), HasSubstr("malformed quoted field"), HasSubstr("'sentence1'")));
  EXPECT_THAT(data_error(Task::rte, "dev.tsv", header + "a\t\"x\" y \"z\"\t0\t0\n"),
              AllOf(HasSubstr("dev.tsv:2"), HasSubstr("'sentence2'")));
  // GLUE's own layout ("index") is never quoted: the same text is taken verbatim.
  ReadGlueFile read;
  const auto ds = read(Task::rte, "dev.tsv",
                       "index\tsentence1\tsentence2\tlabel\n0\t\"unclosed\tb\tentailment\n");
  EXPECT_EQ(ds.examples[0].text_a, "\"unclosed");
}

TEST(ReadGlueErrorTest, DoesNotSkipDashLabelOutsideMnli) {
  EXPECT_THAT(data_error(Task::rte, "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t-\n"),
              HasSubstr("'-'"));
}

// Random byte edits of valid files (tabs, newlines, quotes, braces, invalid UTF-8 among the
// replacement bytes) must either parse or raise DataError: never another exception or a crash.
TEST(ReadGlueErrorTest, MutatedFilesParseOrRaiseDataError) {
  struct Source {
    Task task;
    std::string name;
    std::string contents;
  };
  const std::vector<Source> sources = {
      {Task::sst2, "dev.tsv", "sentence\tlabel\nit 's a charming journey . \t1\nbleak \t0\n"},
      {Task::cola, "dev.tsv", "gj04\t1\t\tThe sailors rode.\ngj04\t0\t*\tThe rope stretch.\n"},
      {Task::stsb, "dev.tsv", "index\tsentence1\tsentence2\tscore\n0\tA man.\tA man!\t4.750\n"},
      {Task::rte, "dev.tsv", "sentence1\tsentence2\tlabel\tidx\n\"a \"\"b\"\"\"\tc\t1\t0\n"},
      {Task::rte, "val.jsonl",
       "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": \"entailment\", \"idx\": 0}\n"},
      {Task::mnli, "dev.jsonl",
       "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"gold_label\": \"-\"}\n"
       "{\"sentence1\": \"c\", \"sentence2\": \"d\", \"gold_label\": \"neutral\"}\n"},
  };
  const std::string alphabet = "\t\n\r\"{}[]:,-0159.e\xC3\xA9\xFF\x80 ab";
  std::mt19937 rng(20261122);
  test::TempDir dir;
  int parsed = 0, rejected = 0;
  for (const auto& src : sources) {
    for (int trial = 0; trial < 300; ++trial) {
      std::string s = src.contents;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        const std::size_t pos = rng() % s.size();
        switch (rng() % 3) {
          case 0:
            s[pos] = alphabet[rng() % alphabet.size()];
            break;
          case 1:
            s.erase(pos, 1 + rng() % 3);
            break;
          default:
            s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
            break;
        }
      }
      // A new file each time: rewriting one file in place makes ext4 flush it on every write.
      const auto path = dir / fmt::format("{}_{}", parsed + rejected, src.name);
      test::write_file(path, s);
      try {
        const Dataset ds = read_glue(src.task, path);
        ++parsed;
        for (const auto& ex : ds.examples) ASSERT_GE(ex.line, 1u);
      } catch (const DataError& e) {
        ++rejected;
        ASSERT_THAT(e.what(), HasSubstr(src.name)) << "seed trial " << trial;
      } catch (const std::exception& e) {
        FAIL() << "non-DataError exception for " << src.name << " trial " << trial << ": "
               << e.what() << "\ninput: " << s;
      }
    }
  }
  // Both outcomes occur, so the edits neither always break nor never touch the parse.
  EXPECT_GT(parsed, 50);
  EXPECT_GT(rejected, 50);
}

// ---- `octet predict` input ----

TEST(ReadTextLinesTest, ReadsSingleTextsAndPairs) {
  std::istringstream in(
      "\xEF\xBB\xBF"
      "a fine film\r\nthe premise\tthe hypothesis\nlast line");
  const auto ex = read_text_lines(in, "input.txt");
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].text_a, "a fine film");
  EXPECT_EQ(ex[0].text_b, "");
  EXPECT_EQ(ex[1].text_a, "the premise");
  EXPECT_EQ(ex[1].text_b, "the hypothesis");
  EXPECT_EQ(ex[2].text_a, "last line");
  EXPECT_EQ(ex[2].line, 3u);
  EXPECT_FALSE(ex[0].has_label);
}

TEST(ReadTextLinesTest, RejectsBlankLine) {
  std::istringstream in("one\n\r\ntwo\n");
  EXPECT_THAT(error_of<DataError>([&] { read_text_lines(in, "input.txt"); }),
              AllOf(HasSubstr("input.txt:2"), HasSubstr("blank line")));
}

TEST(ReadTextLinesTest, RejectsMoreThanTwoFields) {
  std::istringstream in("a\tb\tc\n");
  EXPECT_THAT(error_of<DataError>([&] { read_text_lines(in, "stdin"); }),
              AllOf(HasSubstr("stdin:1"), HasSubstr("found 3")));
}

TEST(ReadTextLinesTest, RejectsEmptyHalfOfAPair) {
  std::istringstream in("premise\t\n");
  EXPECT_THAT(error_of<DataError>([&] { read_text_lines(in, "stdin"); }),
              AllOf(HasSubstr("stdin:1"), HasSubstr("empty text_b")));
}

TEST(ReadTextLinesTest, RejectsInvalidUtf8) {
  std::istringstream in("ok\nbad \xFF\n");
  EXPECT_THAT(error_of<DataError>([&] { read_text_lines(in, "stdin"); }),
              AllOf(HasSubstr("stdin:2"), HasSubstr("invalid UTF-8"), HasSubstr("0xff")));
}

TEST(ReadTextLinesTest, RejectsEmptyInput) {
  std::istringstream in("");
  EXPECT_THAT(error_of<DataError>([&] { read_text_lines(in, "stdin"); }), HasSubstr("no input"));
}

}  // namespace
}  // namespace octet::data
