import Dispatch
import Foundation

/// A box written by exactly one worker and read after all workers have finished.
final class SlotBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// Hands out work indices 0..<count to whichever thread asks next.
private final class WorkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private let count: Int
    init(count: Int) { self.count = count }
    func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }
}

/// Runs `body(slot)` for every slot in 0..<slots on up to `threads` threads.
///
/// Determinism: what a slot computes depends only on the slot index (never on which thread ran it or
/// when), and callers merge slot outputs in slot order afterwards, so results do not depend on the
/// number of threads.
func forEachSlot(_ slots: Int, threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let workers = max(1, min(threads, slots))
    if workers == 1 {
        for s in 0 ..< slots { body(s) }
        return
    }
    let counter = WorkCounter(count: slots)
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        while let s = counter.take() { body(s) }
    }
}
