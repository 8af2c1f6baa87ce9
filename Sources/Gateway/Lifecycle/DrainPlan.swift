/// How long a drain waits at each step. Pure values, so the defaults are tested against the
/// HAProxy example they are derived from.
public struct DrainPlan: Sendable, Hashable {
    /// After the health endpoints turn 503: long enough for HAProxy to mark the node down (check
    /// interval × fall), so no new request is routed here once the listener closes.
    public var announceWait: Duration
    /// How long a leader waits for the follower it hands leadership to to take over.
    public var transferTimeout: Duration
    /// From the start of a drain to exit, whatever is still running: a request that has not
    /// finished by then is cut off and the process exits non-zero.
    public var deadline: Duration

    public init(
        announceWait: Duration = DrainPlan.haproxyWindow(interval: .milliseconds(200), fall: 2),
        transferTimeout: Duration = .seconds(3), deadline: Duration = .seconds(15)
    ) {
        self.announceWait = announceWait
        self.transferTimeout = transferTimeout
        self.deadline = deadline
    }

    /// The time HAProxy takes to mark a server down: `fall` failed checks `interval` apart (the
    /// example's `default-server inter 200ms fall 2`).
    public static func haproxyWindow(interval: Duration, fall: Int) -> Duration { interval * fall }
}
