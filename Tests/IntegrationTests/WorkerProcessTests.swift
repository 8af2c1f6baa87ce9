import Foundation
import TestSupport
import Testing

/// Worker discovery and the proxy with real processes: three `raftgate serve` nodes, echo workers
/// registered over HTTP and through `raftgate agent`, and raw workers that misbehave.
@Suite("Workers and the proxy (real processes)", .serialized)
struct WorkerProcessTests {
    static let nodeArguments = [
        "--tick-ms", "20", "--admin-token", ProcessCluster.adminToken, "--worker-health-interval-ms", "200",
        "--worker-try-timeout-ms", "1000", "--max-body-bytes", "65536", "--public-services", "echo,drain,bad,slow",
    ]
    static let auth = ["Authorization": "Bearer \(ProcessCluster.adminToken)"]

    func startCluster(arguments: [String] = nodeArguments) async throws -> (ProcessCluster, WorkerProcesses) {
        let cluster = ProcessCluster()
        cluster.extraArguments = arguments
        for id in 1...3 { try cluster.start(id) }
        return (cluster, WorkerProcesses(cluster: cluster))
    }

    /// Every node answers `/w/<service>/…` from each of `expected` (echo ids) within `seconds`.
    func everyNodeReaches(_ cluster: ProcessCluster, _ expected: Set<String>, service: String = "echo") async -> Bool {
        for id in 1...3 {
            var seen: Set<String> = []
            let reached = await eventually(within: 15) {
                let answer = await proxied(port: cluster.http(id), path: "/w/\(service)/hello")
                if answer.status == 200, let worker = answer.worker { seen.insert(worker) }
                return seen == expected
            }
            if !reached { return false }
        }
        return true
    }

    @Test func workersRegisterBothWaysAreProxiedFromEveryNodeAndLeaveTheRegistry() async throws {
        let (cluster, workers) = try await startCluster()
        defer {
            workers.stopAll()
            cluster.stopAll()
        }
        #expect(await cluster.settledLeader() != nil)

        // One worker per registration style.
        let registered = ContinuousClock.now
        try workers.startEcho("http-a", index: 0, registerAt: 1, ttlMilliseconds: 2000)
        try workers.startEcho("swim-b", index: 1)
        try workers.startAgent("agent-b", index: 1, memberID: 4242)
        for id in 1...3 {
            #expect(
                await eventually(within: 30) { await cluster.workerIDs(on: id) == ["http-a", "4242"] }, "node \(id)")
        }
        let listed = ContinuousClock.now - registered
        #expect(await everyNodeReaches(cluster, ["http-a", "swim-b"]))
        print(
            "workers: registered on every node after \(listed), proxied from every node after \(ContinuousClock.now - registered) (both styles, processes starting included)"
        )

        // What the worker sees: its own path and query, and who asked.
        let echoed = await proxied(port: cluster.http(2), path: "/w/echo/some/path?q=1")
        #expect(echoed.status == 200)
        #expect(echoed.json?["path"] as? String == "/some/path")
        #expect(echoed.json?["query"] as? String == "q=1")
        let headers = echoed.json?["headers"] as? [String: String]
        #expect(headers?["x-forwarded-for"] == "127.0.0.1")
        #expect(headers?["x-forwarded-proto"] == "http")
        #expect(headers?["x-raftgate-peer"] == nil, "the internal peer header never leaves the gateway")

        // Bad input is refused and registers nothing.
        let node = "http://127.0.0.1:\(cluster.http(1))"
        #expect(
            await HTTP.request("PUT", "\(node)/workers/echo/x", body: Data("{not json".utf8), headers: Self.auth).status
                == 400)
        for body in [
            #"{"address":"nope","ttl_ms":5000}"#, #"{"address":"http://127.0.0.1:1/","ttl_ms":5000}"#,
            #"{"address":"127.0.0.1:9","ttl_ms":5}"#,
        ] {
            #expect(
                await HTTP.request("PUT", "\(node)/workers/echo/x", body: Data(body.utf8), headers: Self.auth).status
                    == 400, "\(body)")
        }
        #expect(
            await HTTP.request("PUT", "\(node)/workers/echo/x", body: #"{"address":"127.0.0.1:9","ttl_ms":5000}"#)
                .status == 401)
        #expect(
            await HTTP.request(
                "PUT", "\(node)/workers/bad%2Fname/x", body: Data(#"{"address":"127.0.0.1:9","ttl_ms":5000}"#.utf8),
                headers: Self.auth
            ).status == 400)
        // A service not declared public needs the tenant's API key (stored as SHA-256 in its config):
        // checked before the service is looked up, so a stranger learns nothing of what exists.
        #expect(await proxied(port: cluster.http(1), path: "/w/nope/x").status == 401)
        for (tenant, digest) in [
            ("acme", "f2ac99e95c7e2c132cf505270b3dcd026197f6cf9d91b90c7c47e5c0a13bf293"),  // acme-secret-key-1
            ("globex", "554fa95688caee0b13915f76688eb19ce70b7c18ef33f7b149498998119b6e54"),  // globex-secret-key-1
        ] {
            let config = #"{"apiKeys":["sha256:\#(digest)"]}"#
            #expect(
                await HTTP.request("PUT", "\(node)/config/\(tenant)", body: Data(config.utf8), headers: Self.auth)
                    .status
                    == 200)
        }
        func tenantStatus(_ tenant: String?, _ key: String?, port: Int) async -> Int {
            var headers: [String: String] = [:]
            if let tenant { headers["X-Tenant"] = tenant }
            if let key { headers["X-API-Key"] = key }
            return await HTTP.request("GET", "http://127.0.0.1:\(port)/w/nope/x", headers: headers).status
        }
        for id in 1...3 {
            // The config cache of every node learns the keys as the write commits (push, not poll).
            #expect(
                await eventually(within: 10) {
                    await tenantStatus("acme", "acme-secret-key-1", port: cluster.http(id)) == 404
                },
                "node \(id): the right key passes, and the service is unknown")
            #expect(await tenantStatus("acme", "globex-secret-key-1", port: cluster.http(id)) == 403)
            #expect(await tenantStatus("acme", "not-a-key", port: cluster.http(id)) == 401)
            #expect(await tenantStatus(nil, "acme-secret-key-1", port: cluster.http(id)) == 400)
        }
        // The tenant's key opens a keyed service, and the worker never sees it (nor a Bearer token).
        let paid = #"{"address":"127.0.0.1:\#(workers.echoPort(0))","ttl_ms":60000}"#
        #expect(
            await HTTP.request("PUT", "\(node)/workers/paid/p1", body: Data(paid.utf8), headers: Self.auth).status
                == 200)
        let keyed = Locked<[String: String]?>(nil)
        #expect(
            await eventually(within: 10) {
                let answer = await HTTP.request(
                    "GET", "\(node)/w/paid/hello", headers: ["X-Tenant": "acme", "X-API-Key": "acme-secret-key-1"])
                let json = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
                keyed.value = json?["headers"] as? [String: String]
                return answer.status == 200
            })
        #expect(keyed.value?["x-tenant"] == "acme")
        #expect(keyed.value?["x-api-key"] == nil, "the tenant's key is not forwarded: \(keyed.value ?? [:])")
        let big = String(repeating: "x", count: 70_000)
        #expect(await proxied("POST", port: cluster.http(1), path: "/w/echo/upload", body: big).status == 413)
        #expect(await proxied("PUT", port: cluster.http(1), path: "/w/echo/upload", body: big).status == 413)
        #expect(await proxied("POST", port: cluster.http(1), path: "/w/echo/upload", body: "small").status == 200)
        // A chunked body is counted as it streams to the worker: 413 past the limit, and the worker
        // it was streaming to is not blamed for it.
        let port1 = cluster.http(1)
        #expect(
            await offThePool { chunkedPostStatus(port: port1, path: "/w/echo/upload", chunks: 10, chunkSize: 10_000) }
                == 413)
        #expect(
            await offThePool { chunkedPostStatus(port: port1, path: "/w/echo/upload", chunks: 2, chunkSize: 1_000) }
                == 200)
        for worker in ["http-a", "4242"] {
            #expect(await cluster.workerEntry(on: 1, service: "echo", worker: worker)?["eligible"] as? Bool == true)
        }
        let metrics = await HTTP.request("GET", "http://127.0.0.1:\(port1)/metrics").body
        #expect(
            metrics.contains(#"raftgate_worker_requests_total{service="echo",class="4xx"} 1"#),
            "the streamed 413 is the only 4xx the proxy answered")
        #expect(await cluster.workerIDs(on: 1) == ["http-a", "4242"])

        // SIGKILL a worker under load: idempotent requests are retried on the other one.
        let victim = try #require(workers.pid("swim-b"))
        let failures = await withTaskGroup(of: [String].self) { group in
            for client in 0..<4 {
                let port = cluster.http(1 + client % 3)
                group.addTask {
                    var failed: [String] = []
                    let end = ContinuousClock.now + .seconds(3)
                    while ContinuousClock.now < end {
                        let answer = await proxied(port: port, path: "/w/echo/load")
                        if answer.status != 200 { failed.append("\(answer.status) \(answer.body)") }
                    }
                    return failed
                }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(800))
                kill(victim, SIGKILL)
                return []
            }
            return await group.reduce([], +)
        }
        _ = workers.waitForExit("swim-b")
        #expect(failures.isEmpty, "idempotent requests failed while a worker was killed: \(failures)")
        for id in 1...3 {
            #expect(
                await eventually(within: 10) {
                    await cluster.workerEntry(on: id, service: "echo", worker: "4242")?["eligible"] as? Bool == false
                }, "node \(id) still sends to the killed worker")
        }

        // Its agent killed too: SWIM declares it dead and the leader removes it everywhere.
        workers.signal("agent-b")
        _ = workers.waitForExit("agent-b")
        for id in 1...3 {
            #expect(await eventually(within: 30) { await cluster.workerIDs(on: id) == ["http-a"] }, "node \(id)")
        }
        // The HTTP worker killed: its lease lapses and it is gone everywhere.
        workers.signal("http-a")
        _ = workers.waitForExit("http-a")
        for id in 1...3 {
            #expect(await eventually(within: 15) { await cluster.workerIDs(on: id) == [] }, "node \(id)")
        }
        #expect(await proxied(port: cluster.http(3), path: "/w/echo/x").status == 404)
    }

    @Test func aLeavingAgentsWorkerFinishesInFlightRequestsAndGetsNoNewOnes() async throws {
        // A per-try timeout longer than the request that is in flight while its worker leaves.
        let (cluster, workers) = try await startCluster(
            arguments: Self.nodeArguments.map { $0 == "1000" ? "5000" : $0 })
        defer {
            workers.stopAll()
            cluster.stopAll()
        }
        #expect(await cluster.settledLeader() != nil)
        try workers.startEcho("drain-c", index: 2)
        try workers.startAgent("agent-c", index: 2, memberID: 4343, service: "drain", drainMilliseconds: 1000)
        #expect(await everyNodeReaches(cluster, ["drain-c"], service: "drain"))

        let port = cluster.http(1)
        let inFlight = Task { () -> (status: Int, worker: String?) in
            let answer = await proxied(port: port, path: "/w/drain/slow?delay_ms=2500")
            return (answer.status, answer.worker)
        }
        try await Task.sleep(for: .milliseconds(300))
        workers.signal("agent-c", SIGTERM)
        // While it drains, it is still registered but takes nothing new.
        #expect(
            await eventually(within: 10) { await proxied(port: cluster.http(2), path: "/w/drain/x").status == 503 },
            "a draining worker still got new requests")
        #expect(workers.waitForExit("agent-c") == 0, "\(workers.log("agent-c"))")
        for id in 1...3 {
            #expect(
                await eventually(within: 10) { await cluster.workerIDs(on: id, service: "drain") == [] }, "node \(id)")
        }
        // Gone from every registry while its request is still running; that request still finishes.
        let finished = await inFlight.value
        #expect(
            finished.status == 200 && finished.worker == "drain-c", "the in-flight request did not finish: \(finished)")
        #expect(await proxied(port: cluster.http(1), path: "/w/drain/x").status == 404)
    }

    @Test func aWorkerThatAnswersGarbageOrHangsIsAnswered502Or504AndEjected() async throws {
        let (cluster, workers) = try await startCluster()
        defer {
            workers.stopAll()
            cluster.stopAll()
        }
        #expect(await cluster.settledLeader() != nil)
        let garbage = try #require(MisbehavingWorker(port: workers.echoPort(5), mode: .garbage))
        let hanging = try #require(MisbehavingWorker(port: workers.echoPort(6), mode: .hang))
        defer {
            garbage.stop()
            hanging.stop()
        }
        try workers.startEcho("good", index: 7)
        let node = "http://127.0.0.1:\(cluster.http(1))"
        for (service, id, index) in [("bad", "g", 5), ("bad", "e", 7), ("slow", "h", 6), ("slow", "e", 7)] {
            let body = #"{"address":"127.0.0.1:\#(workers.echoPort(index))","ttl_ms":60000}"#
            let last = Locked<(status: Int, body: String)>((0, ""))
            let put = await poll(within: 20) {
                let answer = await HTTP.request(
                    "PUT", "\(node)/workers/\(service)/\(id)", body: Data(body.utf8), headers: Self.auth)
                last.value = answer
                return answer.status == 200 ? answer : nil
            }
            #expect(put != nil, "registering \(service)/\(id): last answer \(last.value)")
        }
        for service in ["bad", "slow"] {
            #expect(await eventually(within: 10) { await cluster.workerIDs(on: 2, service: service)?.count == 2 })
        }
        for (service, failing, status) in [("bad", "g", 502), ("slow", "h", 504)] {
            // POST is not retried, so the misbehaving worker's answer reaches the client.
            var sawFailure = false
            for _ in 0..<6 where !sawFailure {
                let answer = await proxied("POST", port: cluster.http(2), path: "/w/\(service)/x", body: "hi")
                if answer.status == status {
                    sawFailure = true
                } else {
                    #expect(answer.status == 200, "\(answer.body)")
                }
            }
            #expect(sawFailure, "\(service): no \(status)")
            #expect(await cluster.workerEntry(on: 2, service: service, worker: failing)?["ejected"] as? Bool == true)
            for _ in 0..<6 {
                #expect(
                    await proxied("POST", port: cluster.http(2), path: "/w/\(service)/x", body: "hi").worker == "good")
            }
        }
        let metrics = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(2))/metrics").body
        #expect(
            metrics.contains(#"raftgate_worker_ejections_total{service="bad"} 1"#),
            "\(metrics.split(separator: "\n").filter { $0.contains("worker") })")
        #expect(metrics.contains(#"raftgate_worker_requests_total{service="slow",class="5xx"} 1"#))
    }
}
