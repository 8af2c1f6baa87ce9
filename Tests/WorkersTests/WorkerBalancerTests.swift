import Node
import Testing

@testable import Workers

@Suite("Worker balancer (picking, ejection, health)")
struct WorkerBalancerTests {
    let start = ContinuousClock.now
    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    func directory(_ workers: [(String, String)], draining: Set<String> = []) -> WorkerDirectory {
        var directory = WorkerDirectory()
        for (index, (service, id)) in workers.enumerated() {
            let record = WorkerRecord(
                service: service, id: id, address: "127.0.0.1:\(9000 + index)", source: .http,
                draining: draining.contains(id))
            directory.apply(
                StoreEvent(kind: .put, key: record.key, value: record.encoded, revision: UInt64(index + 1)))
        }
        return directory
    }

    func picked(_ pick: WorkerBalancer.Pick) -> String? {
        if case .worker(let record) = pick { return record.id }
        return nil
    }

    @Test func picksTheWorkerWithFewestInFlightAndSharesTies() {
        var balancer = WorkerBalancer()
        balancer.sync(directory([("echo", "a"), ("echo", "b"), ("echo", "c")]))
        let first = picked(balancer.pick("echo", at: at(0)))
        let second = picked(balancer.pick("echo", at: at(0)))
        let third = picked(balancer.pick("echo", at: at(0)))
        #expect(Set([first, second, third].compactMap { $0 }) == ["a", "b", "c"], "one each while all are tied")
        balancer.release("echo", "b")
        #expect(picked(balancer.pick("echo", at: at(0))) == "b", "b has the fewest in flight")
        #expect(picked(balancer.pick("echo", excluding: ["a", "b"], at: at(0))) == "c")
    }

    @Test func unknownServiceAndNoEligibleWorkerAreDifferentAnswers() {
        var balancer = WorkerBalancer()
        balancer.sync(directory([("echo", "a")], draining: ["a"]))
        #expect(balancer.pick("nope", at: at(0)) == .unknownService)
        #expect(balancer.pick("echo", at: at(0)) == .noEligibleWorker, "a draining worker gets nothing new")
    }

    @Test func anOutlierIsEjectedButNeverTheLastEligibleUnlessItRefuses() {
        var balancer = WorkerBalancer()
        balancer.sync(directory([("echo", "a"), ("echo", "b")]))
        let result1 = balancer.record(.timeout, service: "echo", id: "a", at: at(0)) == .seconds(5)
        #expect(result1)
        #expect(balancer.eligibleCount("echo", at: at(0)) == 1)
        #expect(picked(balancer.pick("echo", at: at(0))) == "b")
        let result2 = balancer.record(.timeout, service: "echo", id: "b", at: at(0))
        #expect(result2 == nil, "b is the last one left")
        let result3 = balancer.record(.protocolError, service: "echo", id: "b", at: at(0))
        #expect(result3 == nil)
        #expect(balancer.record(.connectFailure(refused: true), service: "echo", id: "b", at: at(0)) != nil)
        #expect(balancer.pick("echo", at: at(1)) == .noEligibleWorker)
        #expect(picked(balancer.pick("echo", at: at(5000))) == "a", "back once its ejection ran out")
    }

    @Test func failedHealthChecksTakeAWorkerOutAndAPassBringsItBack() {
        var balancer = WorkerBalancer()
        balancer.sync(directory([("echo", "a"), ("echo", "b")]))
        balancer.recordCheck(service: "echo", id: "a", passed: false, refused: false, at: at(0))
        #expect(balancer.eligibleCount("echo", at: at(0)) == 2, "one failed check is not enough")
        let result4 = balancer.recordCheck(service: "echo", id: "a", passed: false, refused: false, at: at(0))
        #expect(result4)
        #expect(balancer.eligibleCount("echo", at: at(0)) == 1)
        let result5 = balancer.recordCheck(service: "echo", id: "a", passed: true, refused: false, at: at(0))
        #expect(result5)
        #expect(balancer.eligibleCount("echo", at: at(0)) == 2)
    }

    @Test func syncKeepsCountsOfKnownWorkersAndForgetsGoneOnes() {
        var balancer = WorkerBalancer()
        balancer.sync(directory([("echo", "a"), ("echo", "b")]))
        _ = balancer.pick("echo", excluding: ["b"], at: at(0))
        balancer.sync(directory([("echo", "a")]))
        #expect(balancer.all.map(\.record.id) == ["a"])
        #expect(balancer.all.first?.outstanding == 1)
        balancer.release("echo", "b")  // a request to a removed worker finishing: no effect
        balancer.sync(WorkerDirectory())
        #expect(balancer.pick("echo", at: at(0)) == .unknownService)
    }
}
