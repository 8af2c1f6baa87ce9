import Testing

@testable import Workers

@Suite("SWIM → registry mirror plan")
struct MirrorPlanTests {
    func worker(
        _ id: UInt64, _ status: SWIMWorker.Status, address: String = "127.0.0.1:9000", tags: [String: String] = [:]
    )
        -> SWIMWorker
    {
        SWIMWorker(memberID: id, service: "echo", address: address, tags: tags, status: status)
    }

    @Test func aliveWorkersAreRegisteredDeadAndDepartedOnesRemoved() {
        let registered = [worker(2, .alive).record, worker(3, .alive).record]
        let steps = MirrorPlan.steps(
            swim: [worker(1, .alive), worker(2, .dead), worker(3, .left)], registered: registered,
            removeUnknown: false)
        #expect(
            steps == [
                .put(worker(1, .alive).record), .delete(key: "/_sys/workers/echo/2"),
                .delete(key: "/_sys/workers/echo/3"),
            ])
    }

    @Test func nothingToDoWhenTheRegistryAlreadyMatches() {
        let steps = MirrorPlan.steps(
            swim: [worker(1, .alive), worker(2, .suspect)],
            registered: [worker(1, .alive).record, worker(2, .alive).record],
            removeUnknown: true)
        #expect(steps.isEmpty, "a suspect worker stays registered; health checks decide about its traffic")
    }

    @Test func aChangedAddressOrADrainingTagIsWrittenAgain() {
        let registered = [worker(1, .alive).record]
        let moved = MirrorPlan.steps(
            swim: [worker(1, .alive, address: "127.0.0.1:9001")], registered: registered, removeUnknown: false)
        #expect(moved == [.put(worker(1, .alive, address: "127.0.0.1:9001").record)])
        let draining = worker(1, .alive, tags: ["draining": "true"])
        #expect(draining.record.draining)
        #expect(draining.record.tags.isEmpty)
        #expect(
            MirrorPlan.steps(swim: [draining], registered: registered, removeUnknown: false) == [.put(draining.record)])
    }

    @Test func unknownMembersAreRemovedOnlyAfterTheGraceAndHTTPEntriesNever() {
        let http = WorkerRecord(service: "echo", id: "web-1", address: "127.0.0.1:9100", source: .http)
        let swim = worker(7, .alive).record
        #expect(MirrorPlan.steps(swim: [], registered: [http, swim], removeUnknown: false).isEmpty)
        #expect(MirrorPlan.steps(swim: [], registered: [http, swim], removeUnknown: true) == [.delete(key: swim.key)])
        // A SWIM worker whose key an HTTP registration holds does not overwrite it.
        let clash = WorkerRecord(service: "echo", id: "7", address: "127.0.0.1:9100", source: .http)
        #expect(MirrorPlan.steps(swim: [worker(7, .alive)], registered: [clash], removeUnknown: true).isEmpty)
    }

    @Test func workersWithABadServiceOrAddressAreIgnored() {
        let bad = [
            SWIMWorker(memberID: 1, service: "a/b", address: "127.0.0.1:9000", tags: [:], status: .alive),
            SWIMWorker(memberID: 2, service: "echo", address: "http://x:1/", tags: [:], status: .alive),
        ]
        #expect(MirrorPlan.steps(swim: bad, registered: [], removeUnknown: true).isEmpty)
    }
}
