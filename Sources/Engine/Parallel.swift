import Dispatch
import Foundation

/// A box written by exactly one worker and read after all workers have finished.
final class SlotBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// Folds slot outputs into one accumulator in slot order, each as soon as every earlier slot has
/// delivered. Slots are handed out in ascending order, so with T threads only about T outputs wait at
/// any time instead of all of them (the per-slot sums of pass 2 are 2K·(d³ + d²(d/2+1)) doubles each);
/// the fold order, hence the result, does not depend on the thread count.
final class OrderedFold<Accumulator, Part>: @unchecked Sendable {
    private let lock = NSLock()
    private var waiting: [Int: Part?] = [:]
    private var next = 0
    private var folded: Accumulator
    private let combine: (inout Accumulator, Part) -> Void

    init(_ initial: Accumulator, _ combine: @escaping (inout Accumulator, Part) -> Void) {
        folded = initial
        self.combine = combine
    }

    /// Hands in slot `slot`'s output (nil: the slot had nothing to contribute).
    func deliver(_ slot: Int, _ part: Part?) {
        lock.lock()
        defer { lock.unlock() }
        waiting.updateValue(part, forKey: slot)
        while let entry = waiting.removeValue(forKey: next) {
            if let entry { combine(&folded, entry) }
            next += 1
        }
    }

    /// The accumulator after every slot has delivered.
    var result: Accumulator {
        lock.lock()
        defer { lock.unlock() }
        precondition(waiting.isEmpty, "OrderedFold: slot \(next) never delivered")
        return folded
    }
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
