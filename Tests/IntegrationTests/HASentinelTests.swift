import Foundation
import Sentinel
import TestSupport
import Testing

/// Redis under Sentinel, all real: three `redis-server` (one master, two replicas), three
/// `redis-sentinel` (quorum 2, down-after 1000 ms) and three `raftgate serve`, started here on
/// `TestPorts` blocks and stopped by pid. Gateway 3 asks two real Sentinels and a lying one.
@Suite("HA: Redis under Sentinel behind three gateways", .serialized)
struct HASentinelTests {
    static let adminToken = "ha-sentinel-admin-token"
    static let admin = ["Authorization": "Bearer \(adminToken)"]
    // sha256("acme-secret-key-1") and sha256("globex-secret-key-1").
    static let acme = ["X-Tenant": "acme", "X-API-Key": "acme-secret-key-1"]
    static let acmeDigest = "f2ac99e95c7e2c132cf505270b3dcd026197f6cf9d91b90c7c47e5c0a13bf293"
    static let globex = ["X-Tenant": "globex", "X-API-Key": "globex-secret-key-1"]
    static let globexDigest = "554fa95688caee0b13915f76688eb19ce70b7c18ef33f7b149498998119b6e54"

    struct Operation {
        var gateway: Int
        var started: ContinuousClock.Instant
        var finished: ContinuousClock.Instant
        var status: Int
    }

    func json(_ body: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
    }

    func redisView(_ cluster: ProcessCluster, _ id: Int, sentinels: Bool = false) async -> [String: Any]? {
        let answer = await HTTP.request(
            "GET", "http://127.0.0.1:\(cluster.http(id))/redis\(sentinels ? "?sentinels=1" : "")")
        return answer.status == 200 ? json(answer.body) : nil
    }

    func cache(
        _ method: String, _ cluster: ProcessCluster, _ id: Int, _ key: String, body: String? = nil,
        query: String = "", headers: [String: String] = acme
    ) async -> (status: Int, body: String) {
        await HTTP.request(
            method, "http://127.0.0.1:\(cluster.http(id))/cache/\(key)\(query)", body: body.map { Data($0.utf8) },
            headers: headers)
    }

    @Test(.enabled(if: RedisSentinelStack.available), .timeLimit(.minutes(3)))
    func failoverUnderLoadAndALyingSentinel() async throws {
        let stack = RedisSentinelStack()
        let cluster = ProcessCluster()
        let liar = try #require(FakeSentinel(port: stack.base + 20, claiming: stack.redis(2), epoch: 999))
        defer {
            cluster.stopAll()
            liar.stop()
            stack.stopAll()
        }
        try stack.start()
        #expect(await eventually(within: 60) { await stack.isReady() }, "Redis and Sentinels not ready")

        let real = (1...3).map { "\(stack.sentinel($0))" }
        cluster.extraArguments += ["--admin-token", Self.adminToken]
        for id in 1...2 { cluster.nodeArguments[id] = ["--redis-sentinels", real.joined(separator: ",")] }
        cluster.nodeArguments[3] = ["--redis-sentinels", "\(real[0]),\(real[1]),\(liar.endpoint)"]
        for id in 1...3 { try cluster.start(id) }
        let leader = try #require(await cluster.settledLeader(within: 60))
        // A gateway that could not bind its ports (another test process holding them) has exited.
        for id in 1...3 { try #require(cluster.isRunning(id), "gateway \(id) exited: \(cluster.log(id).suffix(500))") }
        let node = "http://127.0.0.1:\(cluster.http(leader))"
        for (tenant, digest, limit) in [
            ("acme", Self.acmeDigest, #"{"perSecond":100000,"burst":100000}"#),
            ("globex", Self.globexDigest, #"{"perSecond":1,"burst":3}"#),
        ] {
            let config = #"{"apiKeys":["sha256:\#(digest)"],"rateLimit":\#(limit)}"#
            // Retried: on a loaded machine the leader can change under the first try (503).
            #expect(
                await eventually(within: 30) {
                    await HTTP.request("PUT", "\(node)/config/\(tenant)", body: Data(config.utf8), headers: Self.admin)
                        .status == 200
                }, "config \(tenant) not written")
        }

        // Every gateway sees the master the leader committed, and gateway 3's liar is outvoted.
        let master = stack.redis(1)
        for id in 1...3 {
            let shown = await eventually(within: 30) {
                await redisView(cluster, id)?["master"] as? String == "\(master)"
            }
            let view = await redisView(cluster, id)
            #expect(shown, "gateway \(id) never showed the committed master: \(String(describing: view))")
        }
        let committed = try #require(await redisView(cluster, 1))
        #expect(Set(committed["sentinels"] as? [String] ?? []).isSuperset(of: real[0...1]))
        #expect((committed["replicas"] as? [String] ?? []).sorted() == ["\(stack.redis(2))", "\(stack.redis(3))"])
        #expect(await cache("PUT", cluster, 3, "through-3", body: "v").status == 200)
        let view3 = try #require(await redisView(cluster, 3, sentinels: true))
        #expect((view3["inUse"] as? [String: Any])?["master"] as? String == "\(master)")
        let liarSaid = (view3["answers"] as? [[String: Any]])?.first { $0["sentinel"] as? String == "\(liar.endpoint)" }
        #expect(liarSaid?["master"] as? String == "\(stack.redis(2))", "\(view3)")

        // The cache API and its bad input, through every gateway.
        #expect(await cache("PUT", cluster, 1, "hello", body: "world", query: "?ttl_s=600").status == 200)
        for id in 1...3 {
            let got = await cache("GET", cluster, id, "hello")
            #expect(got.status == 200 && got.body == "world", "gateway \(id): \(got)")
        }
        #expect(await cache("GET", cluster, 1, "hello", headers: Self.globex).status == 404, "tenants share keys")
        #expect(await cache("GET", cluster, 1, "hello", headers: ["X-Tenant": "acme"]).status == 401)
        let longKey = await cache("PUT", cluster, 1, String(repeating: "k", count: 513), body: "v")
        #expect(longKey.status == 400 && longKey.body.contains("key_too_long"), "\(longKey)")
        let badTTL = await cache("PUT", cluster, 1, "k", body: "v", query: "?ttl_s=soon")
        #expect(badTTL.status == 400 && badTTL.body.contains("bad_ttl"), "\(badTTL)")
        let huge = await cache("PUT", cluster, 1, "k", body: String(repeating: "x", count: 600 * 1024))
        #expect(huge.status == 413 && huge.body.contains("too_large"), "\(huge)")
        #expect(await cache("GET", cluster, 1, "k").status == 404, "a refused write changed something")
        _ = await stack.command(master, ["HSET", "raftgate:cache:acme:a-hash", "f", "v"])
        let wrongType = await cache("GET", cluster, 2, "a-hash")
        #expect(wrongType.status == 502 && wrongType.body.contains("WRONGTYPE"), "\(wrongType)")
        let deleted = await cache("DELETE", cluster, 2, "a-hash")
        #expect(deleted.status == 200 && deleted.body.contains(#""deleted":true"#), "\(deleted)")

        // The rate limit: globex may send 3 at once, then 1/s, one bucket across the gateways. The
        // isolation check above took the first token; two more pass, the next is 429.
        var statuses: [Int] = []
        for id in [1, 2, 3] { statuses.append(await cache("GET", cluster, id, "x", headers: Self.globex).status) }
        #expect(statuses == [404, 404, 429], "\(statuses)")
        let limited = await HTTP.request(
            "GET", "http://127.0.0.1:\(cluster.http(2))/cache/x", headers: Self.globex)
        #expect(limited.status == 429 && limited.body.contains("rate_limited"), "\(limited)")
        let retryAfter = await Curl.run([
            "-D", "-", "-o", "/dev/null", "-H", "X-Tenant: globex", "-H", "X-API-Key: globex-secret-key-1",
            "http://127.0.0.1:\(cluster.http(3))/cache/x",
        ])
        #expect(retryAfter.body.lowercased().contains("retry-after: 1"), "\(retryAfter.body)")

        // Keys written before the failover, and replicated to both replicas.
        for index in 0..<30 {
            let put = await cache("PUT", cluster, index % 3 + 1, "before-\(index)", body: "v\(index)")
            #expect(put.status == 200, "gateway \(index % 3 + 1): \(put)")
        }
        #expect(
            await eventually(within: 20) {
                for replica in [2, 3] {
                    guard
                        await stack.command(stack.redis(replica), ["GET", "raftgate:cache:acme:before-29"])?.text
                            == "v29"
                    else { return false }
                }
                return true
            }, "not replicated")

        // Steady load through every gateway: a cache write and a rate-limited read per round.
        // One record per gateway, each appended to by its own task only.
        let records = (1...3).map { _ in Locked<[Operation]>([]) }
        var operations: [Operation] { records.flatMap(\.value) }
        let running = Locked(true)
        let load = (1...3).map { id in
            let port = cluster.http(id)
            return Task {
                var index = 0
                while running.value {
                    index += 1
                    let started = ContinuousClock.now
                    let status = await HTTP.request(
                        "PUT", "http://127.0.0.1:\(port)/cache/load-\(id)-\(index)", body: Data("x".utf8),
                        headers: Self.acme
                    ).status
                    records[id - 1].value.append(
                        Operation(gateway: id, started: started, finished: .now, status: status))
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        #expect(await eventually(within: 10) { operations.filter { $0.status == 200 }.count >= 30 })

        let killed = ContinuousClock.now
        stack.kill("redis1")
        let promoted = try #require(
            await poll(within: 60) { () async -> RedisEndpoint? in
                guard let now = await stack.masterAccordingTo(sentinel: 1), now != master,
                    await stack.masterAccordingTo(sentinel: 2) == now
                else { return nil }
                return now
            }, "no failover")
        let promotedIndex = try #require(stack.index(of: promoted))
        let stillReplica = promotedIndex == 2 ? 3 : 2
        liar.claim(stack.redis(stillReplica), epoch: 999)

        // After the failover every gateway writes to the new master and shows it.
        for id in 1...3 {
            #expect(
                await eventually(within: 30) {
                    operations.contains { $0.gateway == id && $0.status == 200 && $0.started > killed }
                }, "gateway \(id) wrote nothing after the kill")
            let switched = await eventually(within: 30) {
                guard let view = await redisView(cluster, id) else { return false }
                return view["master"] as? String == "\(promoted)"
                    && (view["inUse"] as? [String: Any])?["master"] as? String == "\(promoted)"
            }
            let view = await redisView(cluster, id)
            #expect(switched, "gateway \(id): \(String(describing: view))")
        }
        try? await Task.sleep(for: .milliseconds(500))  // a little steady load on the new master, for the record
        running.value = false
        for task in load { await task.value }

        let done = operations
        let failed = done.filter { $0.status != 200 }
        var outages: [Duration] = []
        for id in 1...3 {
            let successes = done.filter { $0.gateway == id && $0.status == 200 }.map(\.finished).sorted()
            let gaps = zip(successes, successes.dropFirst()).map { $1 - $0 }
            outages.append(gaps.max() ?? .zero)
        }
        print(
            "HASentinel failover: new master \(promoted); \(done.count) cache writes, \(failed.count) failed "
                + "(\(Dictionary(grouping: failed, by: \.status).mapValues(\.count))); longest gap without a success per gateway: "
                + outages.map { "\($0)" }.joined(separator: ", "))
        // Keys written and replicated before the failover are all still there.
        for index in 0..<30 {
            let got = await cache("GET", cluster, index % 3 + 1, "before-\(index)")
            #expect(got.status == 200 && got.body == "v\(index)", "before-\(index) lost: \(got)")
        }

        // The killed master comes back; Sentinel turns it into a replica of the new one. No gateway
        // connects to it or writes to it, and writes keep succeeding.
        try stack.startRedis(1, replicaOf: nil)
        #expect(
            await eventually(within: 60) { await stack.role(1) == "slave" }, "the old master never became a replica")
        for round in 0..<10 {
            for id in 1...3 {
                #expect(await cache("PUT", cluster, id, "after-\(id)-\(round)", body: "a").status == 200)
            }
        }
        let names = try #require(await stack.clientNames(1))
        #expect(!names.contains { $0.hasPrefix("raftgate") }, "gateways connected to the old master: \(names)")
        let onNew = await stack.command(promoted, ["GET", "raftgate:cache:acme:after-3-9"])
        #expect(onNew?.text == "a")

        // The liar still points at a replica with a far newer epoch: gateway 3 still writes to the master.
        #expect(await cache("PUT", cluster, 3, "liar-outvoted", body: "yes").status == 200)
        #expect(
            (await redisView(cluster, 3)?["inUse"] as? [String: Any])?["master"] as? String == "\(promoted)")
        // `raftgate status` names the master under its table.
        let endpoints = (1...3).map { "127.0.0.1:\(cluster.http($0))" }.joined(separator: ",")
        let status = try ProcessClusterTests.run(["status", "--endpoints", endpoints])
        #expect(status.output.contains("Redis master: \(promoted) (epoch "), "\(status.output)")
        let metrics = await HTTP.request("GET", "http://127.0.0.1:\(cluster.http(1))/metrics").body
        #expect(metrics.contains("raftgate_redis_master_changes_total"))
        #expect(metrics.contains(#"raftgate_redis_commands_total{result="ok"}"#))
    }

    /// The pool itself, against real Redis and Sentinels that lie: a majority pointing at a
    /// replica is refused by `ROLE` (and resolved again), and a master demoted under a live
    /// connection (`READONLY`) makes the pool resolve again and follow.
    @Test(.enabled(if: RedisSentinelStack.available), .timeLimit(.minutes(2)))
    func roleOnAReplicaTriggersReResolution() async throws {
        let stack = RedisSentinelStack()
        try stack.startRedis(1, replicaOf: nil)
        try stack.startRedis(2, replicaOf: 1)
        let a = try #require(FakeSentinel(port: stack.base + 21, claiming: stack.redis(2), epoch: 5))
        let b = try #require(FakeSentinel(port: stack.base + 22, claiming: stack.redis(2), epoch: 5))
        let c = try #require(FakeSentinel(port: stack.base + 23, claiming: stack.redis(1), epoch: 1))
        var settings = SentinelSettings(sentinels: [a.endpoint, b.endpoint, c.endpoint])
        settings.resolveAttempts = 2
        settings.resolveBackoff = .milliseconds(20)
        settings.clientName = "raftgate-pool-test"
        let client = RedisClient(settings: settings)
        defer {
            a.stop()
            b.stop()
            c.stop()
            stack.stopAll()
        }
        #expect(
            await eventually(within: 20) {
                let replica = await stack.role(2)
                let master = await stack.role(1)
                return replica == "slave" && master == "master"
            })

        // Two of three name the replica: ROLE refuses it, and no command reaches Redis.
        do {
            _ = try await client.pool.execute("SET", "k", "1")
            Issue.record("a write went through while the majority named a replica")
        } catch {
            #expect("\(error)".contains("ROLE says replica"), "\(error)")
        }
        #expect(client.pool.status.master == nil)
        #expect(await stack.command(stack.redis(1), ["GET", "k"]) == .null)

        // One of them changes its mind: the majority names the master; ROLE agrees.
        a.claim(stack.redis(1), epoch: 1)
        let reply = try await client.pool.execute("SET", "k", "1")
        #expect(reply == .status("OK"))
        #expect(client.pool.status.master == stack.redis(1))

        // Switch the roles by hand under the pool's live connection, and tell the (fake)
        // Sentinels: the next command meets READONLY (or a closed connection), resolves again,
        // verifies, and lands on the new master.
        _ = await stack.command(stack.redis(2), ["REPLICAOF", "NO", "ONE"])
        _ = await stack.command(stack.redis(1), ["REPLICAOF", "127.0.0.1", "\(stack.redisPort(2))"])
        for fake in [a, b, c] { fake.claim(stack.redis(2), epoch: 2) }
        #expect(await eventually(within: 20) { await stack.role(1) == "slave" })
        let after = try await client.pool.execute("SET", "k", "2")
        #expect(after == .status("OK"))
        #expect(client.pool.status.master == stack.redis(2))
        #expect(await stack.command(stack.redis(2), ["GET", "k"])?.text == "2")
        let names = try #require(await stack.clientNames(1))
        #expect(!names.contains("raftgate-pool-test"), "the pool kept a connection to the demoted master: \(names)")
        await client.shutdown()
    }
}
