/// When the leader may answer a lease query (a keepalive or a time-to-live) from its own state,
/// and what "not there" may mean. Pure: the caller passes in what it read.
///
/// - Only with a valid quorum lease (no other leader can exist) and once it has applied the first
///   entry of its term, and so every entry of earlier terms: a lease granted at the end of the
///   previous term may be committed but not yet applied, and "not found" would make the client
///   drop a live lease. (A grant of this term was applied here before its client heard of it.)
/// - A lease whose deadline passed is "not found" only once its revoke has applied (the store no
///   longer holds it). Before that the answer is "retry", as etcd's `Renew` waits for the revoke:
///   if that revoke is lost to a leader change, the new leader restarts the lease in full, and a
///   client told "not found" would have stopped keeping it alive.
enum LeaseQueryRule {
    /// Why the leader may not answer yet, or nil when it may.
    static func refusal(leaseValid: Bool, appliedIndex: UInt64, firstIndexOfTerm: UInt64) -> String? {
        guard leaseValid else { return "the leader's quorum lease is not established" }
        guard appliedIndex >= firstIndexOfTerm else {
            return "the leader has not applied the first entry of its term (\(firstIndexOfTerm)) yet"
        }
        return nil
    }

    /// The answer for a lease the store does not hold (`ttl` nil) or holds, given the lessor's
    /// answer for it.
    static func answer(ttlMilliseconds: UInt64?, lessor: () -> Lessor.Answer) -> Outcome {
        guard let ttlMilliseconds else { return .notFound }
        switch lessor() {
        case .alive(let remaining): return .alive(ttlMilliseconds: ttlMilliseconds, remaining: remaining)
        case .expiring: return .retry("the lease expired; its revoke is not applied yet")
        case .inactive: return .retry("the lease clocks of this term are starting")
        }
    }

    enum Outcome: Equatable {
        case alive(ttlMilliseconds: UInt64, remaining: Duration)
        case notFound
        case retry(String)
    }
}
