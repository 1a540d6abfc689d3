// A gate between a database's read-only transactions and the one moment that
// must not overlap them: the last pass of a checkpoint of the write-ahead log.
//
// SQLite starts its log again from the beginning only when a checkpoint has
// copied all of it and no reader still reads an older snapshot from it. Read
// transactions on connections of their own (Datastore::Read) run beside the
// writer's; the checkpoint's last pass closes this gate, waits for those
// under way to end and holds new ones back until it opens it again. New
// readers wait while it is closing, so a steady stream of them cannot keep
// the checkpoint (and the writer it holds back meanwhile) waiting.
#ifndef CANOPY_AGGREGATOR_INTERNAL_READ_GATE_H_
#define CANOPY_AGGREGATOR_INTERNAL_READ_GATE_H_

#include <condition_variable>
#include <mutex>

namespace canopy::aggregator::internal {

class ReadGate {
 public:
  // A read transaction's passage: waits while the gate is closed or
  // closing, and keeps it from closing until destroyed.
  class Reading {
   public:
    explicit Reading(ReadGate& gate) : gate_(gate) { gate_.Enter(); }
    ~Reading() { gate_.Leave(); }
    Reading(const Reading&) = delete;
    Reading& operator=(const Reading&) = delete;

   private:
    ReadGate& gate_;
  };

  // Closed while it lives: new readers wait, and the constructor returns once
  // the readers under way have left. One Closed at a time (the checkpoint
  // thread's).
  class Closed {
   public:
    explicit Closed(ReadGate& gate) : gate_(gate) { gate_.Close(); }
    ~Closed() { gate_.Open(); }
    Closed(const Closed&) = delete;
    Closed& operator=(const Closed&) = delete;

   private:
    ReadGate& gate_;
  };

 private:
  void Enter() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !closed_; });
    ++readers_;
  }
  void Leave() {
    std::lock_guard lock(mutex_);
    if (--readers_ == 0) changed_.notify_all();
  }
  void Close() {
    std::unique_lock lock(mutex_);
    closed_ = true;
    changed_.wait(lock, [this] { return readers_ == 0; });
  }
  void Open() {
    {
      std::lock_guard lock(mutex_);
      closed_ = false;
    }
    changed_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  int readers_ = 0;
  bool closed_ = false;
};

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_READ_GATE_H_
