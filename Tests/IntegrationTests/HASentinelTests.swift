import Foundation
import TestSupport
import Testing

@testable import Sentinel

/// Redis under Sentinel, all real: three `redis-server` (one master, two replicas), three
/// `redis-sentinel` (quorum 2, down-after 3000 ms) and three `raftgate serve`, started here on
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
        var index: Int
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
            cluster.stopAllWithin()
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
        // A majority of real Sentinels agreed (which ones is not re-committed when one is slow).
        let agreeing = Set(committed["sentinels"] as? [String] ?? [])
        #expect(agreeing.count >= 2 && agreeing.isSubset(of: real), "\(agreeing)")
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

        // The rate limit: globex may send 3 at once, then 1/s, one bucket across the gateways. Ten
        // requests back to back would need over 7 s between them to all pass, so some are 429
        // however loaded the machine; every other answer is the missing key's 404.
        var answers: [(status: Int, body: String)] = []
        for round in 0..<10 { answers.append(await cache("GET", cluster, round % 3 + 1, "x", headers: Self.globex)) }
        let limited = answers.filter { $0.status == 429 }
        #expect(!limited.isEmpty, "\(answers.map(\.status))")
        #expect(limited.allSatisfy { $0.body.contains("rate_limited") }, "\(limited)")
        #expect(answers.allSatisfy { $0.status == 429 || $0.status == 404 }, "\(answers)")
        // A 429 says when to come back (at least 1 s); polled, as a token may refill between tries.
        let retryAfter = await poll(within: 20) { () async -> String? in
            let answer = await Curl.run([
                "-D", "-", "-o", "/dev/null", "-H", "X-Tenant: globex", "-H", "X-API-Key: globex-secret-key-1",
                "http://127.0.0.1:\(cluster.http(3))/cache/x",
            ])
            return answer.status == 429 ? answer.body.lowercased() : nil
        }
        #expect(retryAfter?.contains("retry-after: 1") == true, "\(String(describing: retryAfter))")

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

        // Steady load through every gateway: cache writes (each passing acme's rate limit first).
        // One record per gateway, each appended to by its own task only. The tasks stop on every
        // way out of this test, a failed `#require` included.
        let records = (1...3).map { _ in Locked<[Operation]>([]) }
        var operations: [Operation] { records.flatMap(\.value) }
        let running = Locked(true)
        let load = (1...3).map { id in
            let port = cluster.http(id)
            return Task {
                var index = 0
                while running.value, !Task.isCancelled {
                    index += 1
                    let started = ContinuousClock.now
                    let status = await HTTP.request(
                        "PUT", "http://127.0.0.1:\(port)/cache/load-\(id)-\(index)", body: Data("x".utf8),
                        headers: Self.acme
                    ).status
                    records[id - 1].value.append(
                        Operation(gateway: id, index: index, started: started, finished: .now, status: status))
                    do { try await Task.sleep(for: .milliseconds(20)) } catch { return }
                }
            }
        }
        defer {
            running.value = false
            for task in load { task.cancel() }
        }
        #expect(await eventually(within: 10) { operations.filter { $0.status == 200 }.count >= 30 })

        // The master freezes (SIGSTOP) with every gateway's connections to it open: to the world
        // it is gone, and it will come back still claiming to be the master.
        let writesBefore = await stack.writeCommandsSeen(1)
        let stopped = ContinuousClock.now
        stack.signal("redis1", SIGSTOP)
        let promoted = try #require(
            await poll(within: 45) { () async -> RedisEndpoint? in
                guard let now = await stack.masterAccordingTo(sentinel: 2), now != master,
                    await stack.masterAccordingTo(sentinel: 3) == now
                else { return nil }
                return now
            }, "no failover")
        let promotedIndex = try #require(stack.index(of: promoted))
        let stillReplica = promotedIndex == 2 ? 3 : 2
        liar.claim(stack.redis(stillReplica), epoch: 999)

        // Every gateway follows the commit to the new master, and writes there.
        for id in 1...3 {
            let switched = await eventually(within: 20) {
                guard let view = await redisView(cluster, id) else { return false }
                return view["master"] as? String == "\(promoted)"
                    && (view["inUse"] as? [String: Any])?["master"] as? String == "\(promoted)"
            }
            let view = await redisView(cluster, id)
            #expect(switched, "gateway \(id): \(String(describing: view))")
        }
        let moved = ContinuousClock.now
        for id in 1...3 {
            #expect(
                await eventually(within: 20) {
                    operations.contains { $0.gateway == id && $0.status == 200 && $0.started > moved }
                }, "gateway \(id) wrote nothing after the commit moved")
        }

        // The old master thaws, still a master in its own eyes: Sentinel demotes it only after a
        // few seconds. Until then nothing a gateway does may reach it — no write started after the
        // commit moved is in its data, and it is sent no write at all after it woke (what it does
        // at once is only what was already in its sockets from before the freeze).
        stack.signal("redis1", SIGCONT)
        var baseline: Int?
        var samplesAsMaster = 0
        var writesAfterWaking: [Int] = []
        var keysAfterMove: Set<String> = []
        let demoted = await eventually(within: 30) {
            guard await stack.role(1) == "master" else { return await stack.role(1) == "slave" }
            let seen = await stack.writeCommandsSeen(1)
            let keys = await stack.keys(1, "raftgate:cache:acme:load-*")
            guard await stack.role(1) == "master", let seen, let keys else { return false }
            samplesAsMaster += 1
            if let baseline, seen != baseline { writesAfterWaking.append(seen - baseline) }
            if baseline == nil { baseline = seen }
            let writtenAfterMove = Set(
                operations.filter { $0.started > moved }.map { "raftgate:cache:acme:load-\($0.gateway)-\($0.index)" })
            keysAfterMove.formUnion(keys.intersection(writtenAfterMove))
            return false
        }
        #expect(demoted, "the old master never became a replica")
        #expect(samplesAsMaster > 0, "the old master was never seen claiming master after it woke")
        #expect(writesAfterWaking.isEmpty, "writes reached the woken old master: \(writesAfterWaking)")
        #expect(keysAfterMove.isEmpty, "writes after the commit moved landed on the old master: \(keysAfterMove)")
        print(
            "HASentinel old master: \(String(describing: writesBefore)) writes before the freeze; "
                + "\(samplesAsMaster) samples while it still claimed master after waking")

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
            "HASentinel failover: new master \(promoted) \(moved - stopped) after the freeze; \(done.count) cache writes, "
                + "\(failed.count) failed (\(Dictionary(grouping: failed, by: \.status).mapValues(\.count))); "
                + "longest gap without a success per gateway: " + outages.map { "\($0)" }.joined(separator: ", "))
        // Every write acknowledged after the commit moved is on the new master.
        let onPromoted = await stack.keys(promotedIndex, "raftgate:cache:acme:load-*") ?? []
        let acknowledged = done.filter { $0.status == 200 && $0.started > moved }
        let missing = acknowledged.filter { !onPromoted.contains("raftgate:cache:acme:load-\($0.gateway)-\($0.index)") }
        #expect(
            missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged writes missing on the new master")
        // Keys written and replicated before the failover are all still there.
        for index in 0..<30 {
            let got = await cache("GET", cluster, index % 3 + 1, "before-\(index)")
            #expect(got.status == 200 && got.body == "v\(index)", "before-\(index) lost: \(got)")
        }
        for round in 0..<5 {
            for id in 1...3 {
                #expect(await cache("PUT", cluster, id, "after-\(id)-\(round)", body: "a").status == 200)
            }
        }
        let names = try #require(await stack.clientNames(1))
        #expect(!names.contains { $0.hasPrefix("raftgate") }, "gateways connected to the old master: \(names)")
        let onNew = await stack.command(promoted, ["GET", "raftgate:cache:acme:after-3-4"])
        #expect(onNew?.text == "a")

        // The liar still points at a replica with a far newer epoch: gateway 3 still writes to the master.
        #expect(await cache("PUT", cluster, 3, "liar-outvoted", body: "yes").status == 200)
        #expect(
            (await redisView(cluster, 3)?["inUse"] as? [String: Any])?["master"] as? String == "\(promoted)")
        // `raftgate status` names the master under its table.
        let endpoints = (1...3).map { "127.0.0.1:\(cluster.http($0))" }.joined(separator: ",")
        let status = await ProcessCluster.runBounded(["status", "--endpoints", endpoints])
        #expect(status.contains("Redis master: \(promoted) (epoch "), "\(status)")
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
        // No min-replicas here: the test swaps the roles by hand and writes at once.
        try stack.startRedis(1, replicaOf: nil, minReplicasToWrite: 0)
        try stack.startRedis(2, replicaOf: 1, minReplicasToWrite: 0)
        let a = try #require(FakeSentinel(port: stack.base + 21, claiming: stack.redis(2), epoch: 5))
        let b = try #require(FakeSentinel(port: stack.base + 22, claiming: stack.redis(2), epoch: 5))
        let c = try #require(FakeSentinel(port: stack.base + 23, claiming: stack.redis(1), epoch: 1))
        var settings = SentinelSettings(sentinels: [a.endpoint, b.endpoint, c.endpoint])
        settings.resolveAttempts = 2
        settings.resolveBackoff = .milliseconds(20)
        settings.clientName = "raftgate-pool-test"
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
        try await withRedisClient(settings) { client in
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
        }
    }

    /// Review F1: the committed topology decides. Two live masters (a partition's two sides, as
    /// far as a gateway can tell); every Sentinel this gateway reaches names the old one at an
    /// older epoch, and `ROLE` on it says master — yet with the other one committed the pool
    /// refuses, and no command reaches the old master. Once its Sentinels agree with the commit
    /// it writes there.
    @Test(.enabled(if: RedisSentinelStack.available), .timeLimit(.minutes(1)))
    func theCommittedMasterIsTheOnlyOneAdopted() async throws {
        let stack = RedisSentinelStack()
        try stack.startRedis(1, replicaOf: nil, minReplicasToWrite: 0)
        try stack.startRedis(2, replicaOf: nil, minReplicasToWrite: 0)
        let fakes = try (21...23).map {
            try #require(FakeSentinel(port: stack.base + $0, claiming: stack.redis(1), epoch: 4))
        }
        var settings = SentinelSettings(sentinels: fakes.map(\.endpoint))
        settings.resolveBackoff = .milliseconds(20)
        settings.clientName = "raftgate-commit-test"
        defer {
            for fake in fakes { fake.stop() }
            stack.stopAll()
        }
        #expect(
            await eventually(within: 20) {
                let first = await stack.role(1)
                let second = await stack.role(2)
                return first == "master" && second == "master"
            })
        let writesBefore = try #require(await stack.writeCommandsSeen(1))
        try await withRedisClient(settings) { client in
            await client.pool.follow(committed: stack.redis(2), epoch: 5)
            do {
                let reply = try await client.pool.execute("SET", "k", "stale")
                Issue.record("a write was run against the committed topology: \(reply)")
            } catch {
                #expect("\(error)".contains("committed master is \(stack.redis(2))"), "\(error)")
            }
            #expect(client.pool.status.master == nil)
            #expect(client.pool.status.committed == stack.redis(2))
            #expect(await stack.command(stack.redis(1), ["GET", "k"]) == .null)
            #expect(await stack.writeCommandsSeen(1) == writesBefore, "a write reached the old master")

            for fake in fakes { fake.claim(stack.redis(2), epoch: 5) }
            let reply = try await client.pool.execute("SET", "k", "new")
            #expect(reply == .status("OK"))
            #expect(client.pool.status.master == stack.redis(2))
            #expect(await stack.command(stack.redis(2), ["GET", "k"])?.text == "new")
        }
    }

    /// Review F3: a resolution that started before a switch must not bring the old master back.
    /// The Sentinels' answers naming the old master are held in flight; meanwhile they change
    /// their minds, a `+switch-master` hint asks a fresh round (it must not join the stale one),
    /// and the pool is told of the switch. Released, the stale answer is refused on adoption and
    /// the command lands on the new master.
    @Test(.enabled(if: RedisSentinelStack.available), .timeLimit(.minutes(1)))
    func aResolutionFromBeforeASwitchIsNotAdopted() async throws {
        let stack = RedisSentinelStack()
        try stack.startRedis(1, replicaOf: nil, minReplicasToWrite: 0)
        try stack.startRedis(2, replicaOf: nil, minReplicasToWrite: 0)
        let fakes = try (21...23).map {
            try #require(FakeSentinel(port: stack.base + $0, claiming: stack.redis(1), epoch: 1))
        }
        var settings = SentinelSettings(sentinels: fakes.map(\.endpoint))
        settings.resolveBackoff = .milliseconds(20)
        settings.commandTimeout = .seconds(5)
        settings.clientName = "raftgate-flight-test"
        defer {
            for fake in fakes { fake.release() }
            for fake in fakes { fake.stop() }
            stack.stopAll()
        }
        #expect(
            await eventually(within: 20) {
                let first = await stack.role(1)
                let second = await stack.role(2)
                return first == "master" && second == "master"
            })
        try await withRedisClient(settings) { client in
            for fake in fakes { fake.hold() }
            let asked = fakes.map(\.masterQueries)
            let write = Task { try await client.pool.execute("SET", "k", "v") }
            defer { write.cancel() }
            let stale = await eventually(within: 10) {
                zip(fakes, asked).allSatisfy { $0.masterQueries > $1 }
            }
            #expect(stale, "the first resolution never reached the Sentinels")
            for fake in fakes { fake.claim(stack.redis(2), epoch: 2) }
            let hint = Task { await client.pool.hinted() }
            let fresh = await eventually(within: 10) {
                zip(fakes, asked).allSatisfy { $0.masterQueries > $1 + 1 }
            }
            #expect(fresh, "the hint joined the resolution already in flight instead of asking again")
            await client.pool.masterChanged(to: stack.redis(2))
            for fake in fakes { fake.release() }
            await hint.value
            let written = try await write.value
            #expect(written == .status("OK"))
            #expect(client.pool.status.master == stack.redis(2))
            #expect(await stack.command(stack.redis(1), ["GET", "k"]) == .null, "the old master was written")
            #expect(await stack.command(stack.redis(2), ["GET", "k"])?.text == "v")
        }
    }

    /// Review F8 and F7: the pool opens at most `poolSize` connections however many commands
    /// arrive at once (watched from Redis's side too), and a command that finds them all busy
    /// waits for one only until its deadline instead of opening another.
    @Test(.enabled(if: RedisSentinelStack.available), .timeLimit(.minutes(1)))
    func thePoolIsBoundedAndWaitersKeepTheirDeadline() async throws {
        let stack = RedisSentinelStack()
        try stack.startRedis(1, replicaOf: nil, minReplicasToWrite: 0)
        let fakes = try (21...23).map {
            try #require(FakeSentinel(port: stack.base + $0, claiming: stack.redis(1), epoch: 1))
        }
        var settings = SentinelSettings(sentinels: fakes.map(\.endpoint))
        settings.poolSize = 2
        settings.commandTimeout = .seconds(5)
        settings.requestTimeout = .seconds(20)
        settings.clientName = "raftgate-bound-test"
        defer {
            for fake in fakes { fake.stop() }
            stack.stopAll()
        }
        #expect(await eventually(within: 20) { await stack.role(1) == "master" })
        let redis1 = stack.redis(1)
        @Sendable func ours() async -> Int {
            await offThePool {
                guard
                    let connection = try? RedisConnection(
                        redis1, connectTimeout: .milliseconds(500), commandTimeout: .seconds(2))
                else { return 0 }
                defer { connection.close() }
                let list = (try? connection.command("CLIENT", "LIST"))?.text ?? ""
                return list.split(separator: "\n").filter { $0.contains(" name=raftgate-bound-test ") }.count
            }
        }
        try await withRedisClient(settings) { client in
            let bursting = Locked(true)
            let watcher = Task {
                var most = 0
                while bursting.value {
                    most = max(most, await ours())
                    do { try await Task.sleep(for: .milliseconds(5)) } catch { break }
                }
                return most
            }
            let succeeded = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<60 {
                    group.addTask { (try? await client.pool.execute("SET", "k\(index)", "v")) == .status("OK") }
                }
                var succeeded = 0
                for await ok in group where ok { succeeded += 1 }
                return succeeded
            }
            bursting.value = false
            let mostSeen = await watcher.value
            #expect(succeeded == 60)
            #expect(client.pool.status.peakOpen <= 2, "\(client.pool.status)")
            #expect(mostSeen <= 2, "Redis saw \(mostSeen) of the pool's connections at once")

            // Both connections busy (BLPOP holds each 2 s on the server): a third command waits and
            // gives up at its 300 ms deadline, opening nothing.
            let busy = (0..<2).map { index in
                Task { try? await client.pool.execute("BLPOP", "nothing-\(index)", "2") }
            }
            #expect(await eventually(within: 10) { client.pool.status.idleConnections == 0 })
            let started = ContinuousClock.now
            do {
                let reply = try await client.pool.execute([Array("PING".utf8)], within: .milliseconds(300))
                Issue.record("a third command ran beside two busy connections: \(reply)")
            } catch {
                #expect("\(error)".contains("busy"), "\(error)")
            }
            let waited = ContinuousClock.now - started
            #expect(waited < .milliseconds(1500), "waited \(waited)")
            #expect(client.pool.status.peakOpen <= 2, "\(client.pool.status)")
            for task in busy { _ = await task.value }
            let after = try await client.pool.execute("GET", "k0")
            #expect(after.text == "v")
        }
    }
}
