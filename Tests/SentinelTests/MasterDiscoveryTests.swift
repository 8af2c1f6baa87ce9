import Testing

@testable import Sentinel

@Suite("Sentinel discovery: majority, highest epoch, liars outvoted")
struct MasterDiscoveryTests {
    let s1 = RedisEndpoint(host: "127.0.0.1", port: 26379)
    let s2 = RedisEndpoint(host: "127.0.0.1", port: 26380)
    let s3 = RedisEndpoint(host: "127.0.0.1", port: 26381)
    let m1 = RedisEndpoint(host: "127.0.0.1", port: 6379)
    let m2 = RedisEndpoint(host: "127.0.0.1", port: 6380)
    let m3 = RedisEndpoint(host: "127.0.0.1", port: 6381)

    func says(_ sentinel: RedisEndpoint, _ master: RedisEndpoint, epoch: UInt64, replicas: [RedisEndpoint] = [])
        -> SentinelAnswer
    {
        SentinelAnswer(sentinel: sentinel, outcome: .master(master, configEpoch: epoch, replicas: replicas))
    }

    func down(_ sentinel: RedisEndpoint) -> SentinelAnswer {
        SentinelAnswer(sentinel: sentinel, outcome: .unreachable("connection refused"))
    }

    @Test func allAgreeing() {
        let decision = MasterDiscovery.decide(
            [
                says(s1, m1, epoch: 0, replicas: [m2, m3]), says(s2, m1, epoch: 0, replicas: [m2]),
                says(s3, m1, epoch: 0),
            ],
            configured: 3)
        guard case .resolved(let resolution) = decision else {
            Issue.record("undecided: \(decision)")
            return
        }
        #expect(resolution.master == m1)
        #expect(resolution.agreeing == [s1, s2, s3])
        #expect(resolution.replicas == [m2, m3])
        #expect(resolution.basis == .majority)
    }

    @Test func aLyingSentinelIsOutvotedEvenWithAHigherEpoch() {
        // s3 points at a replica and claims a far newer epoch; two of three agree on m1.
        let decision = MasterDiscovery.decide(
            [says(s1, m1, epoch: 2), says(s2, m1, epoch: 2), says(s3, m2, epoch: 999)], configured: 3)
        guard case .resolved(let resolution) = decision else {
            Issue.record("undecided: \(decision)")
            return
        }
        #expect(resolution.master == m1)
        #expect(resolution.agreeing == [s1, s2])
        #expect(resolution.epoch == 2)
    }

    @Test func twoOfThreeAreAMajorityWhenOneIsDown() {
        let decision = MasterDiscovery.decide(
            [says(s1, m2, epoch: 1), down(s2), says(s3, m2, epoch: 1)], configured: 3)
        guard case .resolved(let resolution) = decision else {
            Issue.record("undecided: \(decision)")
            return
        }
        #expect(resolution.master == m2)
        #expect(resolution.basis == .majority)
    }

    @Test func withoutAMajorityTheHighestEpochWins() {
        // Mid-failover: s1 already switched (epoch 3), s2 still reports the old master, s3 is down.
        let decision = MasterDiscovery.decide(
            [says(s1, m2, epoch: 3), says(s2, m1, epoch: 2), down(s3)], configured: 3)
        guard case .resolved(let resolution) = decision else {
            Issue.record("undecided: \(decision)")
            return
        }
        #expect(resolution.master == m2)
        #expect(resolution.basis == .highestEpoch)
        #expect(resolution.agreeing == [s1])
    }

    @Test func twoAddressesAtTheTopEpochDecideNothing() {
        let decision = MasterDiscovery.decide(
            [says(s1, m2, epoch: 3), says(s2, m1, epoch: 3), down(s3)], configured: 3)
        guard case .undecided(let reason) = decision else {
            Issue.record("decided \(decision)")
            return
        }
        #expect(reason.contains("127.0.0.1:6379 by 1"))
    }

    @Test func nobodyAnsweringDecidesNothing() {
        let decision = MasterDiscovery.decide([down(s1), down(s2), down(s3)], configured: 3)
        guard case .undecided(let reason) = decision else {
            Issue.record("decided \(decision)")
            return
        }
        #expect(reason.contains("connection refused"))
    }

    @Test func theMajorityIsOfTheConfiguredSentinelsNotOfThoseWhoAnswered() {
        // Five configured, two answer and agree: not a majority of five, and with only two of five
        // answering the epoch may not break the tie either (review F2).
        let s4 = RedisEndpoint(host: "127.0.0.1", port: 26382)
        let s5 = RedisEndpoint(host: "127.0.0.1", port: 26383)
        let decision = MasterDiscovery.decide(
            [says(s1, m1, epoch: 4), says(s2, m1, epoch: 4), down(s3), down(s4), down(s5)], configured: 5)
        guard case .undecided(let reason) = decision else {
            Issue.record("decided \(decision)")
            return
        }
        #expect(reason.contains("among 2 answering (3 must answer)"), "\(reason)")
    }

    @Test func aSingleAnswerNeverDecidesByEpoch() {
        // Only s1 answers (the minority side of a partition, or a liar): its epoch, however high,
        // does not make its master the one to write to.
        for epoch: UInt64 in [0, 9, 999] {
            let decision = MasterDiscovery.decide([says(s1, m1, epoch: epoch), down(s2), down(s3)], configured: 3)
            guard case .undecided = decision else {
                Issue.record("decided \(decision) from one answer at epoch \(epoch)")
                continue
            }
        }
    }

    @Test func theEpochBreaksATieOnlyAmongAMajorityOfAnswers() {
        // Five configured, three answer and split 2:1: three answered, so the epoch may decide.
        let s4 = RedisEndpoint(host: "127.0.0.1", port: 26382)
        let s5 = RedisEndpoint(host: "127.0.0.1", port: 26383)
        let decision = MasterDiscovery.decide(
            [says(s1, m1, epoch: 4), says(s2, m1, epoch: 4), says(s3, m2, epoch: 5), down(s4), down(s5)],
            configured: 5)
        guard case .resolved(let resolution) = decision else {
            Issue.record("undecided: \(decision)")
            return
        }
        #expect(resolution.master == m2)
        #expect(resolution.basis == .highestEpoch)
    }
}
