/// How one try against a worker ended, as the balancer judges it.
public enum UpstreamOutcome: Sendable, Hashable {
    /// A response whose status is below 500.
    case success
    /// A 5xx response from the worker itself.
    case serverError
    /// No connection: refused, reset before anything was sent, or the connect timed out.
    /// `refused` is an actively refused connection: the process is gone for sure.
    case connectFailure(refused: Bool)
    /// No response head within the per-try timeout.
    case timeout
    /// The worker answered something that is not HTTP.
    case protocolError
}
