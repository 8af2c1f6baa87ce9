import Testing

@testable import Sentinel

@Suite("Rate-limit decisions and cache requests")
struct RateLimitAndCacheTests {
    @Test func scriptAnswersBecomeDecisions() {
        #expect(RateLimitDecision.from(reply: .array([.integer(1), .integer(0)])) == .allowed)
        #expect(RateLimitDecision.from(reply: .array([.integer(0), .integer(1)])) == .limited(retryAfterSeconds: 1))
        #expect(
            RateLimitDecision.from(reply: .array([.integer(0), .integer(2_000_001)])) == .limited(retryAfterSeconds: 3))
        #expect(RateLimitDecision.from(reply: .status("OK")) == nil)
    }

    @Test func unreachableRedisFailsOpenOrClosedAsTheRuleSays() {
        #expect(RateLimitDecision.unavailable("down", mode: .open) == .allowedUnchecked(reason: "down"))
        #expect(RateLimitDecision.unavailable("down", mode: .closed) == .refused(reason: "down"))
        #expect(RateLimitRule(perSecond: 100, burst: 200).failMode == .open)
    }

    @Test func theBucketsIntervalAndArguments() {
        #expect(RateLimitRule(perSecond: 100, burst: 5).intervalMicroseconds == 10_000)
        #expect(RateLimitRule(perSecond: 3_000_000, burst: 5).intervalMicroseconds == 1)
        let arguments = RateLimitRule(perSecond: 4, burst: 2).arguments(tenant: "acme").map {
            String(decoding: $0, as: UTF8.self)
        }
        #expect(arguments[0] == "EVAL")
        #expect(Array(arguments[2...]) == ["1", "raftgate:rl:acme", "250000", "2"])
    }

    @Test func cacheKeysAreNamespacedByTenant() throws {
        let limits = CacheRequest.Limits()
        let acme = try CacheRequest(tenant: "acme", key: "user:1", limits: limits)
        let other = try CacheRequest(tenant: "acme2", key: "user:1", limits: limits)
        #expect(String(decoding: acme.redisKey, as: UTF8.self) == "raftgate:cache:acme:user:1")
        #expect(acme.redisKey != other.redisKey)
        let set = acme.set(Array("v".utf8), ttlSeconds: 30).map { String(decoding: $0, as: UTF8.self) }
        #expect(set == ["SET", "raftgate:cache:acme:user:1", "v", "EX", "30"])
    }

    @Test func badCacheInputIsRefusedWithTheReason() throws {
        var limits = CacheRequest.Limits()
        limits.maxKeyBytes = 8
        limits.maxValueBytes = 4
        #expect(throws: CacheRequest.Problem.keyTooLong(limit: 8)) {
            try CacheRequest(tenant: "acme", key: "123456789", limits: limits)
        }
        #expect(throws: CacheRequest.Problem.emptyKey) { try CacheRequest(tenant: "acme", key: "", limits: limits) }
        // Review F13: a tenant name that could overlap another's key space, and a key whose
        // percent-encoding is not UTF-8 (it would alias the literal text), are refused.
        for tenant in ["", "a:b"] {
            #expect(throws: CacheRequest.Problem.badTenant) {
                try CacheRequest(tenant: tenant, key: "k", limits: limits)
            }
        }
        #expect(throws: CacheRequest.Problem.badKeyEncoding) {
            try CacheRequest(tenant: "acme", encodedKey: "%FF", limits: limits)
        }
        #expect(try CacheRequest(tenant: "acme", encodedKey: "%25FF", limits: limits).key == "%FF")
        #expect(try CacheRequest(tenant: "acme", encodedKey: "user%3A1", limits: limits).key == "user:1")
        #expect(throws: CacheRequest.Problem.self) { try CacheRequest.ttl("soon", limits: limits) }
        #expect(throws: CacheRequest.Problem.self) { try CacheRequest.ttl("0", limits: limits) }
        #expect(throws: CacheRequest.Problem.self) { try CacheRequest.ttl("99999999999", limits: limits) }
        #expect(try CacheRequest.ttl(nil, limits: limits) == nil)
        #expect(try CacheRequest.ttl("60", limits: limits) == 60)
        #expect(throws: CacheRequest.Problem.valueTooLarge(limit: 4)) { try CacheRequest.checkValue(5, limits: limits) }
    }
}
