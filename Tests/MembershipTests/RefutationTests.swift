import Membership
import MembershipSimulation
import Testing

@Suite("Incarnations and refutation")
struct RefutationTests {
    /// SWIM §4.2: a member that hears itself suspected raises its incarnation above the suspicion
    /// and gossips alive, which overrides the suspicion wherever it arrives.
    @Test func refutationBeatsAFalseSuspicion() throws {
        var accused = try Fixtures.instance(1, knowing: 3)
        var accuser = try Fixtures.instance(2, knowing: 3)
        let suspicion = Fixtures.suspect(1, by: 2)
        _ = accuser.receive(.ack(sequence: 0, target: MemberID(3), gossip: [suspicion]), from: Fixtures.address(3))
        #expect(accuser.member(MemberID(1))?.status.kind == .suspect)

        // The buddy-system ping brings the suspicion to the accused, whose ack refutes it.
        let reply = accused.receive(
            .ping(sequence: 9, target: MemberID(1), gossip: [suspicion]), from: Fixtures.address(2))
        #expect(accused.incarnation == 1)
        #expect(accused.counters.refutations == 1)
        #expect(accused.localHealthMultiplier == 2, "Lifeguard: refuting counts against local health")
        let sent = Fixtures.sends(reply)
        #expect(sent.contains { $0.message.isPing && $0.to == Fixtures.address(2) }, "the accuser is told directly")
        let ack = try #require(
            sent.first {
                if case .ack = $0.message { return true }
                return false
            })
        #expect(ack.to == Fixtures.address(2))
        guard case .ack(9, MemberID(1), let gossip) = ack.message else {
            Issue.record("expected an ack, got \(ack.message)")
            return
        }
        #expect(gossip.contains { $0.id == MemberID(1) && $0.status == .alive(incarnation: 1) })

        _ = accuser.receive(ack.message, from: ack.to)
        #expect(accuser.member(MemberID(1))?.status == .alive(incarnation: 1))
        #expect(accuser.counters.falseSuspicionRefutations == 1)

        // An old suspicion arriving late changes nothing.
        _ = accuser.receive(.ping(sequence: 3, target: MemberID(2), gossip: [suspicion]), from: Fixtures.address(3))
        #expect(accuser.member(MemberID(1))?.status == .alive(incarnation: 1))
    }

    /// Precedence (SWIM §4.2 plus leave): higher incarnation wins; at equal incarnation
    /// alive < suspect < dead < left; a dead member with a higher incarnation is alive again.
    @Test func precedenceRules() throws {
        var instance = try Fixtures.instance(1, knowing: 3)
        func hear(_ status: MemberStatus) -> MemberStatus? {
            _ = instance.receive(
                .ping(
                    sequence: 1, target: MemberID(1),
                    gossip: [Member(id: MemberID(3), address: Fixtures.address(3), status: status)]),
                from: Fixtures.address(2))
            return instance.member(MemberID(3))?.status
        }
        #expect(hear(.suspect(incarnation: 0, confirmations: [MemberID(2)]))?.kind == .suspect)
        #expect(hear(.alive(incarnation: 0))?.kind == .suspect, "same incarnation: suspect wins")
        #expect(hear(.dead(incarnation: 0)) == .dead(incarnation: 0))
        #expect(hear(.suspect(incarnation: 0, confirmations: [])) == .dead(incarnation: 0))
        #expect(hear(.alive(incarnation: 0)) == .dead(incarnation: 0))
        #expect(hear(.alive(incarnation: 1)) == .alive(incarnation: 1), "back from the dead")
        #expect(hear(.left(incarnation: 1)) == .left(incarnation: 1))
        #expect(hear(.alive(incarnation: 1)) == .left(incarnation: 1), "left is not undone by equal alive")
        #expect(hear(.dead(incarnation: 1)) == .left(incarnation: 1))
        #expect(hear(.alive(incarnation: 2)) == .alive(incarnation: 2), "a new incarnation rejoins")
    }

    /// Independent suspicions of the same incarnation merge their confirmations, which shorten
    /// the timeout (Lifeguard §IV-B).
    @Test func confirmationsAccumulate() throws {
        var instance = try Fixtures.instance(1, knowing: 8)
        let first = instance.suspicionTimeout(of: MemberID(5))
        #expect(first == nil)
        for suspector in [2, 3, 4, 3] as [UInt64] {
            let item = Fixtures.suspect(5, by: suspector)
            _ = instance.receive(.nack(sequence: 0, gossip: [item]), from: Fixtures.address(suspector))
        }
        guard case .suspect(0, let confirmations)? = instance.member(MemberID(5))?.status else {
            Issue.record("not suspect")
            return
        }
        #expect(confirmations == [MemberID(2), MemberID(3), MemberID(4)])
        #expect(
            instance.suspicionTimeout(of: MemberID(5))
                == instance.settings.suspicionTimeout(members: 8, confirmations: 2))
    }
}
