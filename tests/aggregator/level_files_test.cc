// The level files: records written for a slot read back whole or in part
// across file boundaries, slots freed and reused, tasks kept apart, bad
// arguments refused.
#include "aggregator/level_files.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <numeric>
#include <random>
#include <thread>

#include "tests/testing/temp_folder.h"

namespace canopy::aggregator {
namespace {

dap::TaskId Task(uint8_t n) {
  dap::TaskId id{};
  id.fill(n);
  return id;
}

// Record sizes like Poplar1's at 20 bits: 49 bytes, the leaf 145.
std::vector<size_t> Sizes(size_t levels) {
  std::vector<size_t> sizes(levels, 49);
  sizes.back() = 145;
  return sizes;
}

std::vector<uint8_t> RandomRecords(std::span<const size_t> sizes, std::mt19937_64& random) {
  std::vector<uint8_t> bytes(std::accumulate(sizes.begin(), sizes.end(), size_t{0}));
  for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  return bytes;
}

// The bytes of levels [first, end) within all levels' records.
std::vector<uint8_t> Levels(const std::vector<uint8_t>& all, std::span<const size_t> sizes,
                            size_t first, size_t end) {
  const size_t from = std::accumulate(sizes.begin(), sizes.begin() + first, size_t{0});
  const size_t to = std::accumulate(sizes.begin(), sizes.begin() + end, size_t{0});
  return {all.begin() + static_cast<ptrdiff_t>(from), all.begin() + static_cast<ptrdiff_t>(to)};
}

// Level files in a new temporary folder (removed when the tests end).
std::unique_ptr<LevelFiles> OpenInNewFolder() {
  auto files = LevelFiles::Open(canopy::testing::MakeTempFolder("canopy-level-files"));
  EXPECT_TRUE(files) << files.error().ToString();
  return files ? std::move(*files) : nullptr;
}

TEST(LevelFiles, SlotsReadBackWhatTheyWrote) {
  const std::string folder = canopy::testing::MakeTempFolder("canopy-level-files");
  auto files = LevelFiles::Open(folder);
  ASSERT_TRUE(files) << files.error().ToString();
  // The files have no names: nothing appears in the folder.
  EXPECT_TRUE(std::filesystem::is_empty(folder));
  std::mt19937_64 random(1);
  const std::vector<size_t> sizes = Sizes(20);
  std::vector<std::unique_ptr<poplar::LevelSlot>> slots;
  std::vector<std::vector<uint8_t>> written;
  for (int i = 0; i < 5; ++i) {
    auto slot = (*files)->NewSlot(Task(1), sizes);
    ASSERT_TRUE(slot) << slot.error().ToString();
    written.push_back(RandomRecords(sizes, random));
    ASSERT_TRUE((*slot)->Write(0, written.back()));
    slots.push_back(std::move(*slot));
  }
  EXPECT_TRUE(std::filesystem::is_empty(folder));
  EXPECT_EQ((*files)->usage().slots, 5u);
  EXPECT_EQ((*files)->usage().file_bytes, 5u * (19 * 49 + 145));
  // Every range, within one file (eight levels each) or across several.
  for (size_t s = 0; s < slots.size(); ++s) {
    for (auto [first, end] :
         {std::pair<size_t, size_t>{0, 1}, {3, 7}, {6, 10}, {0, 20}, {19, 20}, {8, 16}, {5, 5}}) {
      std::vector<uint8_t> out(Levels(written[s], sizes, first, end).size());
      ASSERT_TRUE(slots[s]->Read(first, end, out));
      EXPECT_EQ(out, Levels(written[s], sizes, first, end)) << first << ".." << end;
    }
  }
  // A part written later replaces just those levels.
  std::vector<uint8_t> part = RandomRecords(std::span(sizes).subspan(7, 3), random);
  ASSERT_TRUE(slots[2]->Write(7, part));
  std::vector<uint8_t> out(part.size());
  ASSERT_TRUE(slots[2]->Read(7, 10, out));
  EXPECT_EQ(out, part);
  std::vector<uint8_t> before(Levels(written[2], sizes, 0, 7).size());
  ASSERT_TRUE(slots[2]->Read(0, 7, before));
  EXPECT_EQ(before, Levels(written[2], sizes, 0, 7));

  // A freed slot is reused: the files do not grow.
  slots.erase(slots.begin() + 1);
  EXPECT_EQ((*files)->usage().slots, 4u);
  auto reused = (*files)->NewSlot(Task(1), sizes);
  ASSERT_TRUE(reused);
  EXPECT_EQ((*files)->usage().slots, 4u);  // Numbered at its first write.
  ASSERT_TRUE((*reused)->Write(0, RandomRecords(sizes, random)));
  EXPECT_EQ((*files)->usage().slots, 5u);
  EXPECT_EQ((*files)->usage().file_bytes, 5u * (19 * 49 + 145));

  // Once the task's last slot is freed its files go; the next slot starts
  // new ones.
  slots.clear();
  reused->reset();
  EXPECT_EQ((*files)->usage().slots, 0u);
  EXPECT_EQ((*files)->usage().file_bytes, 0u);
  auto fresh = (*files)->NewSlot(Task(1), sizes);
  ASSERT_TRUE(fresh);
  std::vector<uint8_t> unwritten(49);
  EXPECT_FALSE((*fresh)->Read(0, 1, unwritten));
  ASSERT_TRUE((*fresh)->Write(0, RandomRecords(sizes, random)));
  EXPECT_EQ((*files)->usage().file_bytes, 19u * 49 + 145);
}

// Writes `count` slots of random records; returns the slots and their bytes.
struct Written {
  std::vector<std::unique_ptr<poplar::LevelSlot>> slots;
  std::vector<std::vector<uint8_t>> records;
};
Written WriteSlots(LevelFiles& files, std::span<const size_t> sizes, size_t count,
                   std::mt19937_64& random) {
  Written written;
  for (size_t i = 0; i < count; ++i) {
    auto slot = files.NewSlot(Task(1), sizes);
    EXPECT_TRUE(slot) << slot.error().ToString();
    if (!slot) break;
    written.records.push_back(RandomRecords(sizes, random));
    EXPECT_TRUE((*slot)->Write(0, written.records.back()));
    written.slots.push_back(std::move(*slot));
  }
  return written;
}

void ExpectReadBack(const Written& written, std::span<const size_t> sizes) {
  for (size_t s = 0; s < written.slots.size(); ++s) {
    for (auto [first, end] : {std::pair<size_t, size_t>{0, 20}, {6, 10}, {19, 20}}) {
      std::vector<uint8_t> out(Levels(written.records[s], sizes, first, end).size());
      ASSERT_TRUE(written.slots[s]->Read(first, end, out));
      ASSERT_EQ(out, Levels(written.records[s], sizes, first, end)) << "slot " << s;
    }
  }
}

// First writes of consecutive slots wait in memory and go to the files
// together: records read back the same whether still waiting or written
// (3,000 slots fill each file's 64 KB of waiting records several times).
TEST(LevelFiles, WaitingRecordsReadBackBeforeAndAfterTheyAreWritten) {
  std::unique_ptr<LevelFiles> files = OpenInNewFolder();
  ASSERT_NE(files, nullptr);
  std::mt19937_64 random(2);
  const std::vector<size_t> sizes = Sizes(20);
  Written written = WriteSlots(*files, sizes, 3000, random);
  ExpectReadBack(written, sizes);
  EXPECT_EQ(files->usage().file_bytes, 3000u * (19 * 49 + 145));
}

// Written records are read through maps of the files; a file that grows
// past its map (the first is 1 MB) gets a larger one, and records read
// earlier read back the same through it. A slot whose old records were
// written out, then freed and reused, reads its new ones through the map.
TEST(LevelFiles, RecordsReadBackThroughMapsAsTheFilesGrow) {
  std::unique_ptr<LevelFiles> files = OpenInNewFolder();
  ASSERT_NE(files, nullptr);
  std::mt19937_64 random(5);
  const std::vector<size_t> sizes = Sizes(20);  // 392 bytes a slot in each of the first two files.
  Written first = WriteSlots(*files, sizes, 1000, random);
  ExpectReadBack(first, sizes);
  EXPECT_EQ(files->usage().maps, 3u);                      // One a file.
  Written more = WriteSlots(*files, sizes, 5000, random);  // About 2.3 MB a file.
  ExpectReadBack(more, sizes);
  ExpectReadBack(first, sizes);
  EXPECT_EQ(files->usage().maps, 6u);  // Each file outgrew its first.
  // Slot 10's records are in the files; freed and reused, its new records
  // wait, then go out with the next slots', and read back from the files.
  first.slots[10].reset();
  auto reused = files->NewSlot(Task(1), sizes);
  ASSERT_TRUE(reused);
  first.records[10] = RandomRecords(sizes, random);
  ASSERT_TRUE((*reused)->Write(0, first.records[10]));
  first.slots[10] = std::move(*reused);
  Written after = WriteSlots(*files, sizes, 500, random);  // Pushes slot 10's records out.
  ExpectReadBack(first, sizes);
  ExpectReadBack(after, sizes);
}

// A slot freed while its records wait and then reused keeps its new
// records, also once the old ones are written out.
TEST(LevelFiles, AReusedSlotKeepsItsNewRecords) {
  std::unique_ptr<LevelFiles> files = OpenInNewFolder();
  ASSERT_NE(files, nullptr);
  std::mt19937_64 random(3);
  const std::vector<size_t> sizes = Sizes(20);
  Written written = WriteSlots(*files, sizes, 10, random);
  written.slots.erase(written.slots.begin() + 3);
  written.records.erase(written.records.begin() + 3);
  Written again = WriteSlots(*files, sizes, 1, random);  // Slot 3 again.
  EXPECT_EQ(files->usage().file_bytes, 10u * (19 * 49 + 145));
  ExpectReadBack(again, sizes);
  // Enough new slots to push every waiting record out to the files.
  Written more = WriteSlots(*files, sizes, 1000, random);
  ExpectReadBack(again, sizes);
  ExpectReadBack(written, sizes);
  ExpectReadBack(more, sizes);
}

// Threads storing reports at once each read back their own records, also
// while the others' writes push waiting records out to the files.
TEST(LevelFiles, ThreadsWritingAtOnceReadBackTheirOwn) {
  std::unique_ptr<LevelFiles> files = OpenInNewFolder();
  ASSERT_NE(files, nullptr);
  const std::vector<size_t> sizes = Sizes(20);
  std::vector<Written> written(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < written.size(); ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 random(10 + t);
      for (int i = 0; i < 800; ++i) {
        Written one = WriteSlots(*files, sizes, 1, random);
        if (one.slots.empty()) return;
        written[t].slots.push_back(std::move(one.slots[0]));
        written[t].records.push_back(std::move(one.records[0]));
        // One of this thread's earlier slots, whole.
        const size_t s = random() % written[t].slots.size();
        std::vector<uint8_t> out(written[t].records[s].size());
        EXPECT_TRUE(written[t].slots[s]->Read(0, sizes.size(), out));
        EXPECT_EQ(out, written[t].records[s]) << "thread " << t << ", slot " << s;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const Written& each : written) ExpectReadBack(each, sizes);
  EXPECT_EQ(files->usage().slots, 3200u);
}

// A write that cannot reach the disk (here: over the process's file size
// limit) fails for the report that needed the room, which keeps its levels
// in memory; the records still waiting read back, and go out once the disk
// takes them again.
TEST(LevelFiles, WaitingRecordsSurviveAFailedWrite) {
  std::unique_ptr<LevelFiles> files = OpenInNewFolder();
  ASSERT_NE(files, nullptr);
  std::mt19937_64 random(4);
  const std::vector<size_t> sizes = Sizes(20);
  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  // Past the limit, writes fail with EFBIG instead of raising SIGXFSZ.
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit limit = old_limit;
  limit.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  Written written;
  bool failed = false;
  for (int i = 0; i < 2000 && !failed; ++i) {
    auto slot = files->NewSlot(Task(1), sizes);
    ASSERT_TRUE(slot);
    std::vector<uint8_t> records = RandomRecords(sizes, random);
    Result<void> wrote = (*slot)->Write(0, records);
    if (!wrote) {
      EXPECT_EQ(wrote.error().code(), ErrorCode::kIoError);
      std::vector<uint8_t> out(49);
      EXPECT_FALSE((*slot)->Read(0, 1, out));  // It has no slot number.
      failed = true;
      break;
    }
    written.slots.push_back(std::move(*slot));
    written.records.push_back(std::move(records));
  }
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(failed);
  EXPECT_EQ(files->usage().slots, written.slots.size());
  ExpectReadBack(written, sizes);
  Written more = WriteSlots(*files, sizes, 1000, random);
  ExpectReadBack(written, sizes);
  ExpectReadBack(more, sizes);
}

// Long strings put more levels in each file (a task holds at most 32 files);
// reads and writes are the same.
TEST(LevelFiles, LongStrings) {
  std::unique_ptr<LevelFiles> files = OpenInNewFolder();
  ASSERT_NE(files, nullptr);
  std::mt19937_64 random(3);
  const std::vector<size_t> sizes = Sizes(1000);
  auto slot = files->NewSlot(Task(1), sizes);
  ASSERT_TRUE(slot);
  const std::vector<uint8_t> written = RandomRecords(sizes, random);
  ASSERT_TRUE((*slot)->Write(0, written));
  for (auto [first, end] : {std::pair<size_t, size_t>{0, 1000}, {30, 34}, {31, 33}, {996, 1000}}) {
    std::vector<uint8_t> out(Levels(written, sizes, first, end).size());
    ASSERT_TRUE((*slot)->Read(first, end, out));
    EXPECT_EQ(out, Levels(written, sizes, first, end)) << first << ".." << end;
  }
}

TEST(LevelFiles, TasksHaveTheirOwnFiles) {
  std::unique_ptr<LevelFiles> files = OpenInNewFolder();
  ASSERT_NE(files, nullptr);
  std::mt19937_64 random(2);
  auto one = files->NewSlot(Task(1), Sizes(4));
  auto two = files->NewSlot(Task(2), Sizes(12));
  ASSERT_TRUE(one && two);
  const std::vector<uint8_t> first = RandomRecords(Sizes(4), random);
  const std::vector<uint8_t> second = RandomRecords(Sizes(12), random);
  ASSERT_TRUE((*one)->Write(0, first));
  ASSERT_TRUE((*two)->Write(0, second));
  // Erasing a task keeps its files open for the slots still in use.
  files->EraseTask(Task(1));
  std::vector<uint8_t> out(first.size());
  ASSERT_TRUE((*one)->Read(0, 4, out));
  EXPECT_EQ(out, first);
  EXPECT_EQ(files->usage().slots, 1u);  // Only task 2's files are counted.
  out.resize(second.size());
  ASSERT_TRUE((*two)->Read(0, 12, out));
  EXPECT_EQ(out, second);
}

TEST(LevelFiles, RefusesBadArguments) {
  const std::string folder = canopy::testing::MakeTempFolder("canopy-level-files");
  auto missing = LevelFiles::Open(folder + "/no-such-folder");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kIoError);
  EXPECT_NE(missing.error().message().find("no-such-folder"), std::string::npos);

  auto files = LevelFiles::Open(folder);
  ASSERT_TRUE(files);
  EXPECT_FALSE((*files)->NewSlot(Task(1), {}));
  auto slot = (*files)->NewSlot(Task(1), Sizes(10));
  ASSERT_TRUE(slot);
  // Records that end inside a level, or go beyond the last.
  std::vector<uint8_t> bytes(50);
  EXPECT_EQ((*slot)->Write(0, bytes).error().code(), ErrorCode::kInvalidArgument);
  bytes.resize(145 + 49);
  EXPECT_EQ((*slot)->Write(9, bytes).error().code(), ErrorCode::kInvalidArgument);
  // A refused write wrote nothing: levels 0 to 8 read back as written.
  std::vector<uint8_t> nine(9 * 49, 7);
  ASSERT_TRUE((*slot)->Write(0, nine));
  bytes.assign(9 * 49 + 145 + 1, 1);  // One byte beyond the last level.
  EXPECT_EQ((*slot)->Write(0, bytes).error().code(), ErrorCode::kInvalidArgument);
  std::vector<uint8_t> back(9 * 49);
  ASSERT_TRUE((*slot)->Read(0, 9, back));
  EXPECT_EQ(back, nine);
  // A read whose output does not match the levels, or out of range.
  std::vector<uint8_t> out(48);
  EXPECT_EQ((*slot)->Read(0, 1, out).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*slot)->Read(9, 11, out).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace canopy::aggregator
