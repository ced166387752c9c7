/// The time source of the Engine's own timings: the phases of an iteration, the progress rate, and the
/// c2r FFTs of the search as they run inside it. The Engine reads no clock itself: its caller gives one
/// (the program gives Distributed's `MonotonicClock`); without one every timing is 0 and the
/// search's inner loop has no clock call at all.
public protocol TimeSource: Sendable {
    /// Seconds since a fixed, arbitrary origin; never decreases.
    func seconds() -> Double
}
