import NIOConcurrencyHelpers
import NIOCore

/// Lets one log line through per `interval` and counts the ones it held back: a stranger hammering
/// the peer port must not be able to flood the log with our warnings about it.
final class LogThrottle: Sendable {
    private let interval: TimeAmount
    private let state = NIOLockedValueBox((next: NIODeadline.uptimeNanoseconds(0), suppressed: 0))

    init(interval: TimeAmount) {
        self.interval = interval
    }

    /// How many lines were held back since the last one let through, or nil to hold this one back.
    func admit(now: NIODeadline = .now()) -> Int? {
        state.withLockedValue { state in
            guard now >= state.next else {
                state.suppressed += 1
                return nil
            }
            defer { state = (now + interval, 0) }
            return state.suppressed
        }
    }
}
