import Membership
import MembershipSimulation
import Testing

@Suite("Join, leave and metadata")
struct LifecycleTests {
    /// Every member joins through member 1 only, and learns about everyone (with metadata).
    @Test(arguments: [(UInt64(41), 0.0), (42, 0.1)])
    func joinThroughOneSeedLearnsEveryone(seed: UInt64, loss: Double) {
        let members = 20
        var options = SWIMSimulationOptions(seed: seed, members: members, ticks: 100_000)
        options.loss = loss
        let simulation = SWIMSimulation(options: options)
        simulation.bootstrap()
        let took = simulation.run(atMost: options.warmup) { $0.now > 25 && $0.convergenceProblems().isEmpty }
        #expect(took != nil, "\(simulation.convergenceProblems().prefix(5))")
        for observer in 0..<members {
            #expect(simulation.instance(observer).isJoining == false)
            for subject in 0..<members {
                let held = simulation.view(of: observer, about: subject)
                #expect(held?.metadata?.nodeID == UInt64(subject + 1))
            }
        }
    }

    /// A joining member retries its seeds until one answers.
    @Test func joinRetriesUntilASeedAnswers() throws {
        var joiner = try SWIMInstance(id: MemberID(9), address: Fixtures.address(9))
        let first = joiner.join(seeds: [Fixtures.address(9), Fixtures.address(1), Fixtures.address(2)])
        #expect(first.filter { if case .startPushPull = $0 { true } else { false } }.count == 2, "not itself")
        var retries = 0
        for _ in 0..<(3 * joiner.settings.joinRetryInterval) {
            retries += joiner.tick().filter { if case .startPushPull = $0 { true } else { false } }.count
        }
        #expect(retries >= 4)
        _ = joiner.mergePushPull([Fixtures.alive(1), Fixtures.alive(2)])
        #expect(!joiner.isJoining)
        #expect(joiner.liveMemberCount == 3)
    }

    /// A leaving member is held as left everywhere, not as dead, even after it stops, and older
    /// alive gossip does not bring it back.
    @Test func gracefulLeave() {
        let members = 8
        let simulation = Fixtures.joinedSimulation(seed: 51, members: members, loss: 0.05)
        let leaver = 3
        simulation.leave(leaver)
        simulation.run(ticks: 5 * simulation.options.settings.probeInterval)
        simulation.kill(leaver)  // the process exits after its grace period
        let settings = simulation.options.settings
        let took = simulation.run(atMost: settings.worstCaseDetectionTicks(members: members, localHealthMultiplier: 8))
        {
            simulation in
            (0..<members).allSatisfy { $0 == leaver || simulation.view(of: $0, about: leaver)?.status.kind == .left }
        }
        #expect(took != nil)
        simulation.run(ticks: 2 * settings.worstCaseDetectionTicks(members: members))
        for observer in 0..<members where observer != leaver {
            #expect(simulation.view(of: observer, about: leaver)?.status.kind == .left)
            #expect(simulation.instance(observer).counters.deathsDeclared == 0)
        }
        #expect(simulation.report.violations.isEmpty, "\(simulation.report.violations)")
    }

    /// New metadata reaches every member, and an older version never replaces a newer one.
    @Test func metadataUpdatePropagates() throws {
        let members = 12
        let simulation = Fixtures.joinedSimulation(seed: 61, members: members, loss: 0.05)
        let publisher = 5
        let updated = Fixtures.metadata(UInt64(publisher + 1), tags: ["zone": "b", "draining": "true"])
        simulation.updateMetadata(publisher, updated)
        #expect(simulation.instance(publisher).localMember.metadataVersion == 2)
        let took = simulation.run(atMost: 400) { simulation in
            (0..<members).allSatisfy { simulation.view(of: $0, about: publisher)?.metadata == updated }
        }
        #expect(took != nil)
        #expect(simulation.view(of: 0, about: publisher)?.metadataVersion == 2)

        var instance = try Fixtures.instance(1, knowing: 3)
        let newer = Member(
            id: MemberID(2), address: Fixtures.address(2), status: .alive(incarnation: 0),
            metadata: Fixtures.metadata(2, tags: ["v": "3"]), metadataVersion: 3)
        var older = newer
        older.metadata = Fixtures.metadata(2, tags: ["v": "2"])
        older.metadataVersion = 2
        let changes = instance.receive(.nack(sequence: 0, gossip: [newer, older]), from: Fixtures.address(2))
        #expect(instance.member(MemberID(2))?.metadata?.tags == ["v": "3"])
        #expect(
            changes.contains {
                if case .memberChanged(let change) = $0 { change.member.id == MemberID(2) } else { false }
            })
    }
}
