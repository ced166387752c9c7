import Dispatch
import Engine

/// The program's time source for the Engine's timings (`TimeSource`): the monotonic uptime clock, so a
/// change of the wall clock (NTP, daylight saving) cannot make a phase negative.
public struct MonotonicClock: TimeSource {
    public init() {}

    public func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
}
