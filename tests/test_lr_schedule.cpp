// LrSchedule against torch.optim.lr_scheduler (fixtures from
// tools/fixtures/make_schedule_fixtures.py) and the config checks of train.schedule.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "host/train/lr_schedule.hpp"
#include "test_support.hpp"

using namespace cadenza;

namespace {

TrainConfig train_config_of(const nlohmann::json& c) {
  TrainConfig t;
  t.lr = c.at("lr");
  t.epochs = c.at("epochs");
  const nlohmann::json& s = c.at("schedule");
  t.schedule.type = s.at("type");
  t.schedule.warmup_epochs = s.value("warmup_epochs", 0.0);
  t.schedule.step_epochs = s.value("step_epochs", 30);
  t.schedule.milestones = s.value("milestones", std::vector<int>{});
  t.schedule.gamma = s.value("gamma", 0.1);
  t.schedule.min_lr = s.value("min_lr", 0.0);
  t.schedule.patience = s.value("patience", 10);
  t.schedule.factor = s.value("factor", 0.1);
  t.schedule.threshold = s.value("threshold", 1e-4);
  return t;
}

}  // namespace

TEST_CASE("learning-rate schedules equal torch.optim.lr_scheduler (fixtures)", "[cpu][train]") {
  std::ifstream in(std::string(CADENZA_TEST_FIXTURES) + "/schedules/schedules.json");
  REQUIRE(in);
  const nlohmann::json fixtures = nlohmann::json::parse(in);
  REQUIRE(fixtures.at("cases").size() == 6);
  for (const nlohmann::json& c : fixtures.at("cases")) {
    const std::string name = c.at("name");
    SECTION(name) {
      const TrainConfig config = train_config_of(c);
      const int steps_per_epoch = c.at("steps_per_epoch");
      const LrSchedule schedule(config, steps_per_epoch);
      const std::vector<double> expected = c.at("lrs");
      REQUIRE(expected.size() == std::size_t(config.epochs) * steps_per_epoch);
      PlateauState plateau;
      for (std::size_t step = 0; step < expected.size(); ++step) {
        INFO("step " << step);
        const double lr = schedule.lr(std::int64_t(step), plateau);
        // torch multiplies the running rate step by step; the closed form differs by rounding.
        CHECK(std::abs(lr - expected[step]) <= 1e-12 + 1e-9 * expected[step]);
        const bool epoch_ends = (step + 1) % steps_per_epoch == 0;
        if (epoch_ends && c.contains("metrics")) {
          const nlohmann::json& m = c.at("metrics")[step / steps_per_epoch];
          const double value = m.is_null() ? std::numeric_limits<double>::quiet_NaN() : m.get<double>();
          schedule.observe(value, c.at("minimize"), plateau);
        }
      }
    }
  }
}

TEST_CASE("plateau reports a reduction; other schedules ignore observations", "[cpu][train]") {
  TrainConfig config;
  config.lr = 0.1;
  config.epochs = 10;
  config.schedule.type = "plateau";
  config.schedule.patience = 0;
  config.schedule.factor = 0.5;
  const LrSchedule plateau(config, 3);
  PlateauState state;
  CHECK_FALSE(plateau.observe(1.0, true, state));  // the first value is the best so far
  CHECK(plateau.observe(1.0, true, state));        // no improvement, patience 0: halve
  CHECK(plateau.lr(0, state) == 0.05);
  CHECK(plateau.uses_validation());

  config.schedule.type = "constant";
  const LrSchedule constant(config, 3);
  PlateauState untouched;
  CHECK_FALSE(constant.observe(2.0, true, untouched));
  CHECK_FALSE(constant.observe(3.0, true, untouched));
  CHECK(untouched.scale == 1.0);
  CHECK(constant.lr(29, untouched) == 0.1);
  CHECK_FALSE(constant.uses_validation());
}

TEST_CASE("train.schedule keys that contradict each other are refused by name", "[cpu][train]") {
  using cadenza::testing::user_error_message;
  TrainConfig config;
  config.epochs = 4;
  config.schedule.type = "multistep";
  CHECK_THAT(user_error_message([&] { LrSchedule(config, 5); }),
             Catch::Contains("train.schedule.milestones"));
  config.schedule.milestones = {3, 2};
  CHECK_THAT(user_error_message([&] { LrSchedule(config, 5); }),
             Catch::Contains("increasing"));
  config.schedule = ScheduleConfig{};
  config.schedule.type = "cosine";
  config.schedule.min_lr = 1.0;
  CHECK_THAT(user_error_message([&] { LrSchedule(config, 5); }),
             Catch::Contains("train.schedule.min_lr"));
  config.schedule.min_lr = 0.0;
  config.schedule.warmup_epochs = 4;
  CHECK_THAT(user_error_message([&] { LrSchedule(config, 5); }),
             Catch::Contains("train.schedule.warmup_epochs"));
}
