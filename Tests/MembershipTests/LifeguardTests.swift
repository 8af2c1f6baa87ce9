import Membership
import Testing

@Suite("Lifeguard: local health, nacks, suspicion timeouts, buddy system")
struct LifeguardTests {
    @Test func suspicionTimeoutShrinksLogarithmicallyWithConfirmations() {
        let settings = SWIMSettings()
        let members = 10
        let minimum = settings.suspicionMinTicks(members: members)
        let maximum = settings.suspicionMaxTicks(members: members)
        #expect(minimum == settings.suspicionMinMultiplier * settings.probeInterval, "log10(10) = 1")
        #expect(maximum == settings.suspicionMaxMultiplier * minimum)
        let timeouts = (0...5).map { settings.suspicionTimeout(members: members, confirmations: $0) }
        #expect(timeouts.first == maximum)
        #expect(timeouts[settings.suspicionConfirmations] == minimum)
        #expect(timeouts.last == minimum, "more confirmations than K change nothing")
        #expect(zip(timeouts, timeouts.dropFirst()).allSatisfy { $0 >= $1 })
        // max − (max − min)·log 2/log 4 = max − (max − min)/2 for C = 1, K = 3.
        #expect(timeouts[1] == maximum - (maximum - minimum) / 2)
        // With two members nobody can confirm: a lone suspicion waits the maximum.
        #expect(settings.suspicionTimeout(members: 2, confirmations: 0) == settings.suspicionMaxTicks(members: 2))
        // Larger groups wait longer (log n).
        #expect(settings.suspicionMinTicks(members: 100) == 2 * minimum)
    }

    @Test func retransmitLimitIsLambdaLogN() {
        let settings = SWIMSettings()
        #expect(settings.retransmitLimit(members: 3) == 4)
        #expect(settings.retransmitLimit(members: 9) == 4)
        #expect(settings.retransmitLimit(members: 20) == 8)
        #expect(settings.retransmitLimit(members: 100) == 12)
    }

    @Test func settingsAreValidated() {
        var settings = SWIMSettings()
        settings.probeTimeout = settings.probeInterval
        #expect(throws: SWIMError.self) { try SWIMInstance(id: MemberID(1), address: "a", settings: settings) }
    }

    /// A probe with no ack and no nack raises the multiplier by the missing nacks; the multiplier
    /// stretches the next period; a successful probe lowers it again.
    @Test func localHealthRisesOnMissedNacksAndFallsOnAcks() throws {
        var instance = try Fixtures.instance(1, knowing: 5)
        #expect(instance.localHealthMultiplier == 1)
        let ping = try #require(Fixtures.tick(&instance) { $0.isPing })
        let pingAt = instance.now
        var requests: [String] = []
        var failedAt: UInt64 = 0
        var nextPing: SWIMMessage?
        for _ in 0..<instance.settings.probeInterval {
            let sent = Fixtures.sends(instance.tick())
            requests += sent.filter { $0.message.isPingRequest }.map(\.to)
            if instance.localHealthMultiplier > 1 {
                failedAt = instance.now
                nextPing = sent.first { $0.message.isPing }?.message
                break
            }
        }
        #expect(requests.count == 3, "k = 3 intermediaries")
        #expect(!requests.contains(ping.to), "never the target itself")
        #expect(instance.localHealthMultiplier == 4, "three missing nacks")
        #expect(failedAt - pingAt == UInt64(instance.settings.probeInterval))
        #expect(instance.counters.suspicionsRaised == 1)

        // The next probe starts at once and its period is 4× longer: the indirect phase waits 4× too.
        guard case .ping(let sequence, let target, _)? = nextPing else {
            Issue.record("the next probe did not start when the period ended")
            return
        }
        for _ in 0..<(instance.settings.probeTimeout * 4 - 1) {
            #expect(!Fixtures.sends(instance.tick()).contains { $0.message.isPingRequest })
        }
        _ = instance.receive(.ack(sequence: sequence, target: target, gossip: []), from: Fixtures.address(target.node))
        #expect(instance.localHealthMultiplier == 3)
    }

    /// When every intermediary nacks, the target is unreachable but we are fine: health unchanged.
    @Test func nacksFromAllIntermediariesKeepHealth() throws {
        var instance = try Fixtures.instance(1, knowing: 5)
        _ = try #require(Fixtures.tick(&instance) { $0.isPing })
        var requests: [(SWIMMessage, String)] = []
        while requests.isEmpty {
            requests = Fixtures.sends(instance.tick()).filter { $0.message.isPingRequest }
        }
        for (message, helper) in requests {
            guard case .pingRequest(let sequence, _, _, _) = message else { continue }
            _ = instance.receive(.nack(sequence: sequence, gossip: []), from: helper)
            _ = instance.receive(.nack(sequence: sequence, gossip: []), from: helper)  // duplicates count once
        }
        for _ in 0..<instance.settings.probeInterval { _ = instance.tick() }
        #expect(instance.counters.suspicionsRaised == 1)
        #expect(instance.localHealthMultiplier == 1)
    }

    /// The intermediary pings the target at once and nacks at 80% of the probe timeout, not before;
    /// a late ack is still relayed.
    @Test func intermediaryNacksAtEightyPercentOfTheProbeTimeout() throws {
        var helper = try Fixtures.instance(2, knowing: 4)
        let out = Fixtures.sends(
            helper.receive(
                .pingRequest(sequence: 77, target: MemberID(3), targetAddress: Fixtures.address(3), gossip: []),
                from: Fixtures.address(1)))
        guard case .ping(let relaySequence, MemberID(3), _)? = out.first?.message else {
            Issue.record("no ping to the target: \(out)")
            return
        }
        #expect(out.first?.to == Fixtures.address(3))
        let nackTimeout = helper.settings.nackTimeout
        #expect(nackTimeout == 3)
        var nackTick: Int?
        for tick in 1...helper.settings.probeInterval {
            let nacks = Fixtures.sends(helper.tick()).filter { $0.message.isNack }
            if let nack = nacks.first {
                #expect(nack.to == Fixtures.address(1))
                if case .nack(let sequence, _) = nack.message { #expect(sequence == 77) }
                nackTick = tick
                break
            }
        }
        #expect(nackTick == nackTimeout)
        let relayed = Fixtures.sends(
            helper.receive(.ack(sequence: relaySequence, target: MemberID(3), gossip: []), from: Fixtures.address(3)))
        guard case .ack(77, MemberID(3), _)? = relayed.first?.message else {
            Issue.record("ack not relayed: \(relayed)")
            return
        }
        #expect(relayed.first?.to == Fixtures.address(1))
    }

    /// Buddy system: a ping to a member we suspect carries that suspicion as its first record.
    @Test func pingToASuspectCarriesTheSuspicion() throws {
        var instance = try Fixtures.instance(1, knowing: 3)
        let suspicion = Fixtures.suspect(3, by: 2)
        _ = instance.receive(.ping(sequence: 1, target: MemberID(1), gossip: [suspicion]), from: Fixtures.address(2))
        #expect(instance.member(MemberID(3))?.status.kind == .suspect)
        // Drain the normal dissemination of that news, so only the buddy rule can put it in the ping.
        for _ in 0..<20 {
            _ = instance.receive(.ping(sequence: 2, target: MemberID(1), gossip: []), from: Fixtures.address(2))
        }
        let ping = try #require(
            Fixtures.tick(&instance, limit: 100) {
                if case .ping(_, MemberID(3), _) = $0 { return true }
                return false
            })
        #expect(ping.message.gossip.first?.id == MemberID(3))
        #expect(ping.message.gossip.first?.status.kind == .suspect)
    }

    /// SWIM §4.3: with everyone acking, n − 1 consecutive probes visit every other member once.
    @Test func randomizedRoundRobinProbesEveryoneOncePerRound() throws {
        let members = 9
        var instance = try Fixtures.instance(1, knowing: members)
        var rounds: [[UInt64]] = []
        var current: [UInt64] = []
        for _ in 0..<(3 * (members - 1)) {
            guard case .ping(let sequence, let target, _)? = Fixtures.tick(&instance, until: { $0.isPing })?.message
            else {
                Issue.record("no probe")
                return
            }
            _ = instance.receive(.ack(sequence: sequence, target: target, gossip: []), from: "")
            current.append(target.node)
            if current.count == members - 1 {
                rounds.append(current)
                current = []
            }
        }
        for round in rounds { #expect(round.sorted() == Array(2...UInt64(members))) }
        #expect(Set(rounds).count > 1, "each round is reshuffled")
        #expect(instance.localHealthMultiplier == 1)
    }
}
