// `octet` never loads libtorch: `octet pretrain|finetune` exec `octet-train` from the directory of
// the octet executable with the arguments untouched, or fail with exit 2 naming the path looked
// for when this build has no trainer; `octet --help` still lists both commands.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/cli_runner.h"
#include "common/test_support.h"

namespace octet {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using ::testing::HasSubstr;
using ::testing::Not;

class TrainerExec : public test::CliTest {
 protected:
  // A copy of `octet` in a directory of its own, without octet-train beside it.
  fs::path lone_octet() const {
    const fs::path dir = tmp_ / "bin";
    fs::create_directories(dir);
    fs::copy_file(test::octet_binary(), dir / "octet");
    fs::permissions(dir / "octet", fs::perms::owner_all, fs::perm_options::add);
    return dir / "octet";
  }
};

TEST_F(TrainerExec, OctetDoesNotLinkLibtorch) {
  const CliResult r = test::run_program("ldd", q(test::octet_binary()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("libc.so"));  // ldd did list the libraries
  EXPECT_THAT(r.out, Not(HasSubstr("torch"))) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("libc10"))) << r.out;
}

TEST_F(TrainerExec, HelpListsTheTrainingCommands) {
  const CliResult r = run("--help");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("pretrain"));
  EXPECT_THAT(r.out, HasSubstr("finetune"));
  EXPECT_THAT(r.out,
              HasSubstr(test::trainer_binary_built() ? "runs octet-train"
                                                     : "needs octet-train: not in this build"));
  const CliResult lone = test::run_program(lone_octet(), "--help");
  ASSERT_EQ(lone.code, 0) << lone.err;
  EXPECT_THAT(lone.out, HasSubstr("needs octet-train: not in this build"));
}

TEST_F(TrainerExec, WithoutOctetTrainIsAUsageErrorNamingThePathLookedFor) {
  const fs::path octet = lone_octet();
  for (const char* command : {"finetune --task sst2", "pretrain --help"}) {
    const CliResult r = test::run_program(octet, command);
    EXPECT_EQ(r.code, 2) << command;
    EXPECT_EQ(r.out, "") << command;
    EXPECT_THAT(r.err, HasSubstr((octet.parent_path() / "octet-train").string())) << command;
    EXPECT_THAT(r.err, HasSubstr("lacks the trainer")) << command;
    EXPECT_THAT(r.err, HasSubstr("libtorch-dev")) << command;
  }
}

TEST_F(TrainerExec, TrainingCommandsRunOctetTrainWithTheArgumentsUntouched) {
  if (!test::trainer_binary_built()) {
    // This build has no trainer: the real binary must say so, as the copy above does.
    const CliResult r = run("finetune --help");
    EXPECT_TRUE(test::exits_with(r, 2, "libtorch-dev"));
    return;
  }
  // --help reaches octet-train (octet's own parser never sees it); argv[0] is kept, so the usage
  // line names the octet program and the subcommand.
  CliResult r = run("finetune --help");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("--qat"));
  EXPECT_THAT(r.out, HasSubstr("octet finetune"));
  r = run("pretrain --help");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("--corpus"));
  // One argument with spaces and quotes arrives as one argument; the trainer's exit code (2, a
  // usage error) and its message come back.
  r = run("finetune --task \"it's no task\" --train a.tsv --dev b.tsv --out " + q(tmp_ / "o"));
  EXPECT_TRUE(test::exits_with(r, 2, {"it's no task", "octet: error: "}));
  r = run("pretrain --out " + q(tmp_ / "p") + " --frobnicate 3");
  EXPECT_TRUE(test::exits_with(r, 2, "frobnicate"));
}

}  // namespace
}  // namespace octet
