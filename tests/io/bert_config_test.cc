#include "io/bert_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "common/test_support.h"
#include "octet/error.h"

namespace octet::io {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The message parse_bert_config throws for `j`, or a test failure if it accepts it.
std::string error_of(const json& j) {
  try {
    parse_bert_config(j, "models/x/config.json");
  } catch (const ModelFormatError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted " << j.dump();
  return "";
}

TEST(BertConfigTest, EmptyObjectGivesHuggingFaceDefaults) {
  const BertConfig c = parse_bert_config(json::object(), "config.json");
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.hidden_size, 768);
  EXPECT_EQ(c.num_hidden_layers, 12);
  EXPECT_EQ(c.num_attention_heads, 12);
  EXPECT_EQ(c.intermediate_size, 3072);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.type_vocab_size, 2);
  EXPECT_EQ(c.pad_token_id, 0);
  EXPECT_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.hidden_act, Activation::gelu);
  EXPECT_EQ(c.num_labels, 2);
  EXPECT_THAT(c.id2label, ElementsAre("LABEL_0", "LABEL_1"));
  EXPECT_EQ(c.problem_type, ProblemType::single_label_classification);
  EXPECT_EQ(c.model_type, "bert");
  EXPECT_EQ(c.head_dim(), 64);
}

TEST(BertConfigTest, LoadsSharedBertBaseConfig) {
  const BertConfig c = load_bert_config(octet::test::require_data("vocab/bert_config.json"));
  EXPECT_EQ(c.hidden_size, 768);
  EXPECT_EQ(c.num_hidden_layers, 12);
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.hidden_act_name, "gelu");
  EXPECT_TRUE(c.raw.contains("initializer_range"));
}

TEST(BertConfigTest, ReadsSmallModelFields) {
  const json j = {{"model_type", "bert"},
                  {"vocab_size", 1000},
                  {"hidden_size", 128},
                  {"num_hidden_layers", 2},
                  {"num_attention_heads", 2},
                  {"intermediate_size", 512},
                  {"max_position_embeddings", 64},
                  {"type_vocab_size", 1},
                  {"pad_token_id", 3},
                  {"layer_norm_eps", 1e-5},
                  {"hidden_act", "gelu_new"},
                  {"quantization_config", {{"mode", "ema"}}}};
  const BertConfig c = parse_bert_config(j, "config.json");
  EXPECT_EQ(c.vocab_size, 1000);
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_EQ(c.type_vocab_size, 1);
  EXPECT_EQ(c.pad_token_id, 3);
  EXPECT_EQ(c.layer_norm_eps, 1e-5);
  EXPECT_EQ(c.hidden_act, Activation::gelu_tanh);
  EXPECT_EQ(c.hidden_act_name, "gelu_new");
  EXPECT_EQ(c.raw["quantization_config"]["mode"], "ema");
}

TEST(BertConfigTest, MapsActivationSpellings) {
  const std::pair<const char*, Activation> cases[] = {{"gelu", Activation::gelu},
                                                      {"gelu_new", Activation::gelu_tanh},
                                                      {"gelu_pytorch_tanh", Activation::gelu_tanh},
                                                      {"gelu_fast", Activation::gelu_tanh},
                                                      {"relu", Activation::relu}};
  for (const auto& [name, act] : cases) {
    EXPECT_EQ(parse_bert_config({{"hidden_act", name}}, "c").hidden_act, act) << name;
  }
}

TEST(BertConfigTest, ReadsId2LabelInIdOrder) {
  const json j = {{"id2label", {{"2", "neutral"}, {"0", "negative"}, {"1", "positive"}}}};
  const BertConfig c = parse_bert_config(j, "config.json");
  EXPECT_EQ(c.num_labels, 3);
  EXPECT_THAT(c.id2label, ElementsAre("negative", "positive", "neutral"));
  EXPECT_EQ(c.problem_type, ProblemType::single_label_classification);
}

TEST(BertConfigTest, NumLabelsWithoutId2LabelNamesLabels) {
  const BertConfig c = parse_bert_config({{"num_labels", 3}}, "config.json");
  EXPECT_THAT(c.id2label, ElementsAre("LABEL_0", "LABEL_1", "LABEL_2"));
}

TEST(BertConfigTest, ProblemTypeFollowsHuggingFaceRule) {
  EXPECT_EQ(parse_bert_config({{"num_labels", 1}}, "c").problem_type, ProblemType::regression);
  EXPECT_EQ(parse_bert_config({{"num_labels", 5}}, "c").problem_type,
            ProblemType::single_label_classification);
  EXPECT_EQ(
      parse_bert_config({{"num_labels", 5}, {"problem_type", "multi_label_classification"}}, "c")
          .problem_type,
      ProblemType::multi_label_classification);
  EXPECT_EQ(parse_bert_config({{"num_labels", 1}, {"problem_type", nullptr}}, "c").problem_type,
            ProblemType::regression);
  EXPECT_EQ(parse_bert_config({{"id2label", {{"0", "score"}}}}, "c").problem_type,
            ProblemType::regression);
}

TEST(BertConfigTest, RoundTripsThroughJson) {
  BertConfig c = parse_bert_config({{"hidden_size", 256},
                                    {"num_attention_heads", 4},
                                    {"hidden_act", "gelu_pytorch_tanh"},
                                    {"layer_norm_eps", 1e-7},
                                    {"id2label", {{"0", "unacceptable"}, {"1", "acceptable"}}},
                                    {"problem_type", "single_label_classification"},
                                    {"quantization_config", {{"bits", 8}}}},
                                   "c");
  const json j = to_json(c);
  const BertConfig d = parse_bert_config(j, "round trip");
  EXPECT_EQ(d.hidden_size, 256);
  EXPECT_EQ(d.num_attention_heads, 4);
  EXPECT_EQ(d.hidden_act, Activation::gelu_tanh);
  EXPECT_EQ(d.hidden_act_name, "gelu_pytorch_tanh");
  EXPECT_EQ(d.layer_norm_eps, 1e-7);
  EXPECT_EQ(d.id2label, c.id2label);
  EXPECT_EQ(d.num_labels, 2);
  EXPECT_EQ(d.problem_type, c.problem_type);
  EXPECT_EQ(d.raw["quantization_config"]["bits"], 8);
  EXPECT_EQ(j["label2id"]["acceptable"], 1);
  EXPECT_EQ(to_json(d), j);
}

TEST(BertConfigTest, LoadReportsMissingFileAndBadJson) {
  octet::test::TempDir dir;
  EXPECT_THROW(load_bert_config(dir / "config.json"), IoError);
  octet::test::write_file(dir / "config.json", "{\"hidden_size\": 768,}");
  try {
    load_bert_config(dir / "config.json");
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("config.json"), HasSubstr("not valid JSON"),
                                HasSubstr("at file byte 20 (line 1, column 21)")));
  }
}

TEST(BertConfigTest, LoadRejectsDuplicateKeysAndDeepNesting) {
  octet::test::TempDir dir;
  octet::test::write_file(dir / "config.json",
                          "{\n  \"hidden_size\": 768,\n  \"hidden_size\": 512\n}");
  try {
    load_bert_config(dir / "config.json");
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("config.json"),
                                HasSubstr("\"hidden_size\" appears more than once")));
  }
  // Deep enough to exhaust the stack of a recursive JSON walker if it were accepted.
  octet::test::write_file(dir / "config.json",
                          "{\"x\": " + std::string(200000, '[') + std::string(200000, ']') + "}");
  try {
    load_bert_config(dir / "config.json");
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("config.json"), HasSubstr("nested more than 64 levels")));
  }
}

// ---- One test per rejected field. ----

TEST(BertConfigTest, RejectsConfigThatIsNotAnObject) {
  EXPECT_THAT(error_of(json::array({1})),
              AllOf(HasSubstr("models/x/config.json"), HasSubstr("expected a JSON object")));
}

TEST(BertConfigTest, RejectsWrongJsonType) {
  EXPECT_THAT(
      error_of({{"hidden_size", "768"}}),
      AllOf(HasSubstr("models/x/config.json"), HasSubstr("\"hidden_size\""),
            HasSubstr("string \"768\""), HasSubstr("expected an integer in [1, 2147483647]")));
  EXPECT_THAT(error_of({{"num_hidden_layers", 12.5}}), HasSubstr("number 12.5"));
  EXPECT_THAT(error_of({{"vocab_size", true}}), HasSubstr("boolean true"));
  EXPECT_THAT(error_of({{"hidden_act", 1}}),
              AllOf(HasSubstr("\"hidden_act\""), HasSubstr("expected a string")));
}

TEST(BertConfigTest, RejectsNonPositiveSizes) {
  for (const char* field :
       {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "max_position_embeddings", "type_vocab_size", "num_labels"}) {
    EXPECT_THAT(error_of({{field, 0}}), AllOf(HasSubstr(std::string("\"") + field + "\" is 0"),
                                              HasSubstr("expected an integer in [1, 2147483647]")))
        << field;
  }
  EXPECT_THAT(error_of({{"hidden_size", -768}}), HasSubstr("-768"));
}

TEST(BertConfigTest, RejectsSizesBeyondInt32) {
  EXPECT_THAT(error_of({{"vocab_size", 2147483648LL}}),
              AllOf(HasSubstr("\"vocab_size\" is 2147483648"),
                    HasSubstr("expected an integer in [1, 2147483647]")));
  EXPECT_THAT(error_of(json::parse(R"({"hidden_size": 18446744073709551615})")),
              HasSubstr("18446744073709551615"));
  EXPECT_EQ(parse_bert_config({{"vocab_size", 2147483647LL}}, "c").vocab_size, 2147483647LL);
}

TEST(BertConfigTest, RejectsHiddenSizeNotDivisibleByHeads) {
  EXPECT_THAT(error_of({{"hidden_size", 100}, {"num_attention_heads", 12}}),
              AllOf(HasSubstr("\"hidden_size\" is 100"),
                    HasSubstr("expected a multiple of num_attention_heads (12)")));
}

TEST(BertConfigTest, RejectsUnknownActivationListingSupportedOnes) {
  EXPECT_THAT(error_of({{"hidden_act", "swish"}}),
              AllOf(HasSubstr("\"hidden_act\" is \"swish\""), HasSubstr("\"gelu\""),
                    HasSubstr("\"gelu_new\""), HasSubstr("\"relu\"")));
}

TEST(BertConfigTest, RejectsBadLayerNormEps) {
  EXPECT_THAT(error_of({{"layer_norm_eps", 0.0}}),
              AllOf(HasSubstr("\"layer_norm_eps\""), HasSubstr("finite positive")));
  EXPECT_THAT(error_of({{"layer_norm_eps", -1e-12}}), HasSubstr("finite positive"));
  EXPECT_THAT(error_of({{"layer_norm_eps", "1e-12"}}), HasSubstr("string"));
  EXPECT_THAT(error_of({{"layer_norm_eps", std::numeric_limits<double>::infinity()}}),
              HasSubstr("finite"));
  octet::test::TempDir dir;
  octet::test::write_file(dir / "config.json", R"({"layer_norm_eps": 1e999})");
  try {
    load_bert_config(dir / "config.json");
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("config.json"), HasSubstr("number overflow")));
  }
}

TEST(BertConfigTest, RejectsId2LabelWithBadKeys) {
  EXPECT_THAT(error_of({{"id2label", {{"0", "a"}, {"2", "b"}}}}),
              AllOf(HasSubstr("\"id2label\""), HasSubstr("the key \"2\""),
                    HasSubstr("expected keys \"0\"..\"1\"")));
  EXPECT_THAT(error_of({{"id2label", {{"zero", "a"}}}}), HasSubstr("the key \"zero\""));
  EXPECT_THAT(error_of({{"id2label", {{"00", "a"}, {"1", "b"}}}}), HasSubstr("the key \"00\""));
  EXPECT_THAT(error_of({{"id2label", {{"-1", "a"}}}}), HasSubstr("the key \"-1\""));
  EXPECT_THAT(error_of({{"id2label", {{"0", 5}}}}), HasSubstr("expected string labels"));
  EXPECT_THAT(error_of({{"id2label", json::array({"a", "b"})}}), HasSubstr("non-empty object"));
}

TEST(BertConfigTest, RejectsNumLabelsDisagreeingWithId2Label) {
  EXPECT_THAT(
      error_of({{"num_labels", 3}, {"id2label", {{"0", "a"}, {"1", "b"}}}}),
      AllOf(HasSubstr("\"num_labels\" is 3"), HasSubstr("expected 2 (the size of id2label)")));
}

TEST(BertConfigTest, RejectsUnknownProblemType) {
  EXPECT_THAT(
      error_of({{"problem_type", "ranking"}}),
      AllOf(HasSubstr("\"problem_type\""), HasSubstr("\"ranking\""), HasSubstr("\"regression\"")));
}

TEST(BertConfigTest, RejectsRobertaAndOtherModelTypes) {
  EXPECT_THAT(error_of({{"model_type", "roberta"}}),
              AllOf(HasSubstr("\"model_type\" is \"roberta\""), HasSubstr("not supported"),
                    HasSubstr("expected \"bert\"")));
  EXPECT_THAT(error_of({{"model_type", "gpt2"}}), HasSubstr("\"gpt2\""));
}

TEST(BertConfigTest, RejectsRelativePositionEmbeddings) {
  EXPECT_THAT(error_of({{"position_embedding_type", "relative_key"}}),
              AllOf(HasSubstr("\"position_embedding_type\""), HasSubstr("\"absolute\"")));
  EXPECT_EQ(parse_bert_config({{"position_embedding_type", "absolute"}}, "c").hidden_size, 768);
}

TEST(BertConfigTest, RejectsPadTokenOutsideVocabulary) {
  EXPECT_THAT(error_of({{"vocab_size", 100}, {"pad_token_id", 100}}),
              AllOf(HasSubstr("\"pad_token_id\" is 100"), HasSubstr("below vocab_size 100")));
  EXPECT_THAT(error_of({{"pad_token_id", -1}}),
              HasSubstr("expected an integer in [0, 2147483647]"));
  EXPECT_EQ(parse_bert_config({{"pad_token_id", nullptr}}, "c").pad_token_id, 0);
}

}  // namespace
}  // namespace octet::io
