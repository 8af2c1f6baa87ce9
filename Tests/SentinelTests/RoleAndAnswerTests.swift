import Testing

@testable import Sentinel

@Suite("ROLE verdicts and Sentinel replies")
struct RoleAndAnswerTests {
    func bulk(_ text: String) -> RedisReply { .string(Array(text.utf8)) }

    @Test func masterIsAccepted() {
        let reply = RedisReply.array([bulk("master"), .integer(12345), .array([])])
        #expect(RoleCheck.verdict(reply) == .accept)
    }

    @Test func aReplicaMeansResolveAgain() {
        let reply = RedisReply.array([
            bulk("slave"), bulk("127.0.0.1"), .integer(6379), bulk("connected"), .integer(1000),
        ])
        guard case .reResolve(let reason) = RoleCheck.verdict(reply) else {
            Issue.record("accepted a replica")
            return
        }
        #expect(reason.contains("replica of 127.0.0.1:6379"))
    }

    @Test func aSentinelOrAnErrorMeansResolveAgain() {
        #expect(RoleCheck.verdict(.array([bulk("sentinel"), .array([])])) != .accept)
        #expect(RoleCheck.verdict(.error("NOAUTH Authentication required.")) != .accept)
        #expect(RoleCheck.verdict(.null) != .accept)
    }

    func fields(_ pairs: [(String, String)]) -> RedisReply {
        .array(pairs.flatMap { [bulk($0.0), bulk($0.1)] })
    }

    @Test func onlyAMasterEpochOrReplicaChangeIsCommitted() {
        let m1 = RedisEndpoint(host: "127.0.0.1", port: 6379)
        let m2 = RedisEndpoint(host: "127.0.0.1", port: 6380)
        let m3 = RedisEndpoint(host: "127.0.0.1", port: 6381)
        let s1 = RedisEndpoint(host: "127.0.0.1", port: 26379)
        let s2 = RedisEndpoint(host: "127.0.0.1", port: 26380)
        let stored = RedisTopology(master: m1, replicas: [m2, m3], sentinels: [s1, s2], epoch: 3)
        var observed = stored
        observed.sentinels = [s1]  // one Sentinel slow this round
        #expect(!RedisTopology.needsCommit(stored: stored, observed: observed))
        observed.replicas = [m3, m2]  // the same set, another order
        #expect(!RedisTopology.needsCommit(stored: stored, observed: observed))
        #expect(RedisTopology.needsCommit(stored: nil, observed: observed))
        observed.replicas = [m2]
        #expect(RedisTopology.needsCommit(stored: stored, observed: observed))
        observed = stored
        observed.epoch = 4
        #expect(RedisTopology.needsCommit(stored: stored, observed: observed))
        observed = stored
        observed.master = m2
        #expect(RedisTopology.needsCommit(stored: stored, observed: observed))
    }

    @Test func readOnlyRepliesMeanDemotionWhereverTheyAre() {
        // Redis 7.0's own words for a plain command and for a script's write on a replica, and the
        // wrapped form older versions gave scripts (review F5).
        #expect(RoleCheck.isDemotion("READONLY You can't write against a read only replica."))
        #expect(
            RoleCheck.isDemotion(
                "READONLY You can't write against a read only replica. script: bd6f3018, on @user_script:1."))
        #expect(
            RoleCheck.isDemotion(
                "ERR Error running script (call to f_9b8a): @user_script:1: -READONLY You can't write against a read only replica."
            ))
        #expect(!RoleCheck.isDemotion("WRONGTYPE Operation against a key holding the wrong kind of value"))
        #expect(!RoleCheck.isDemotion("NOREPLICAS Not enough good replicas to write."))
    }

    @Test func parsesASentinelsAnswerAndDropsReplicasItSeesDown() {
        let sentinel = RedisEndpoint(host: "127.0.0.1", port: 26379)
        let answer = SentinelAnswer.parse(
            sentinel: sentinel, address: .array([bulk("127.0.0.1"), bulk("6380")]),
            master: fields([("name", "mymaster"), ("ip", "127.0.0.1"), ("port", "6380"), ("config-epoch", "7")]),
            replicas: .array([
                fields([("ip", "127.0.0.1"), ("port", "6381"), ("flags", "slave")]),
                fields([("ip", "127.0.0.1"), ("port", "6379"), ("flags", "s_down,slave,disconnected")]),
            ]))
        #expect(
            answer.outcome
                == .master(
                    RedisEndpoint(host: "127.0.0.1", port: 6380), configEpoch: 7,
                    replicas: [RedisEndpoint(host: "127.0.0.1", port: 6381)]))
    }

    @Test func anUnmonitoredNameOrAMissingEpochIsNoAnswer() {
        let sentinel = RedisEndpoint(host: "127.0.0.1", port: 26379)
        let unmonitored = SentinelAnswer.parse(
            sentinel: sentinel, address: .null, master: .error("ERR No such master with that name"),
            replicas: .error("ERR No such master with that name"))
        guard case .unknownMaster = unmonitored.outcome else {
            Issue.record("\(unmonitored)")
            return
        }
        let noEpoch = SentinelAnswer.parse(
            sentinel: sentinel, address: .array([bulk("127.0.0.1"), bulk("6380")]), master: fields([("ip", "x")]),
            replicas: .array([]))
        guard case .unknownMaster = noEpoch.outcome else {
            Issue.record("\(noEpoch)")
            return
        }
    }

    @Test func switchMasterHintsAreReadOnlyForOurName() {
        let message = RedisReply.array([
            bulk("message"), bulk("+switch-master"), bulk("mymaster 127.0.0.1 6379 127.0.0.1 6380"),
        ])
        #expect(
            SwitchMasterListener.hint(message, masterName: "mymaster") == RedisEndpoint(host: "127.0.0.1", port: 6380))
        #expect(SwitchMasterListener.hint(message, masterName: "other") == nil)
        #expect(
            SwitchMasterListener.hint(
                .array([bulk("subscribe"), bulk("+switch-master"), .integer(1)]), masterName: "mymaster") == nil)
    }

    @Test func endpointsParseAndStoreAsHostPort() throws {
        #expect(RedisEndpoint("127.0.0.1:26379") == RedisEndpoint(host: "127.0.0.1", port: 26379))
        #expect(RedisEndpoint("127.0.0.1") == nil)
        #expect(RedisEndpoint(":6379") == nil)
        #expect(RedisEndpoint("h:70000") == nil)
        let topology = RedisTopology(
            master: RedisEndpoint(host: "127.0.0.1", port: 6380),
            replicas: [RedisEndpoint(host: "127.0.0.1", port: 6381)],
            sentinels: [RedisEndpoint(host: "127.0.0.1", port: 26379)], epoch: 3)
        #expect(
            String(decoding: topology.encoded, as: UTF8.self)
                == #"{"epoch":3,"master":"127.0.0.1:6380","replicas":["127.0.0.1:6381"],"sentinels":["127.0.0.1:26379"]}"#
        )
        #expect(RedisTopology.decode(topology.encoded) == topology)
    }
}
