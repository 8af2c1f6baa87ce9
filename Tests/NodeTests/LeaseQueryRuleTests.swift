import Testing

@testable import Node

/// When the leader answers a keepalive or a time-to-live, and when "not found" is the answer.
@Suite struct LeaseQueryRuleTests {
    /// A lease granted at the end of the last term can be committed but not yet applied by the
    /// new leader: until it has applied its own term's first entry it must answer "retry", never
    /// read its store and say "not found". Later entries committed but not applied yet do not
    /// hold it up (a grant of this term was applied here before its client heard of it).
    @Test func notBeforeTheLeaderAppliedItsTermsFirstEntry() {
        #expect(LeaseQueryRule.refusal(leaseValid: true, appliedIndex: 9, firstIndexOfTerm: 10) != nil)
        #expect(LeaseQueryRule.refusal(leaseValid: false, appliedIndex: 10, firstIndexOfTerm: 10) != nil)
        #expect(LeaseQueryRule.refusal(leaseValid: true, appliedIndex: 10, firstIndexOfTerm: 10) == nil)
        #expect(LeaseQueryRule.refusal(leaseValid: true, appliedIndex: 12, firstIndexOfTerm: 10) == nil)
    }

    /// An expired lease whose revoke has not applied is "retry" (etcd's Renew waits for the
    /// revoke); "not found" only once the store no longer holds it.
    @Test func notFoundOnlyOnceTheRevokeApplied() {
        #expect(LeaseQueryRule.answer(ttlMilliseconds: 5_000) { .expiring } != .notFound)
        guard case .retry = LeaseQueryRule.answer(ttlMilliseconds: 5_000, lessor: { .expiring }) else {
            Issue.record("an expiring lease is not 'retry'")
            return
        }
        #expect(LeaseQueryRule.answer(ttlMilliseconds: nil) { .expiring } == .notFound)
        #expect(
            LeaseQueryRule.answer(ttlMilliseconds: 5_000) { .alive(remaining: .seconds(5)) }
                == .alive(ttlMilliseconds: 5_000, remaining: .seconds(5)))
    }
}
