import Foundation
import Node

/// Who answers: etcd's `ResponseHeader` fields that do not change with the request.
public struct EtcdIdentity: Sendable, Hashable {
    public var clusterID: UInt64
    public var memberID: UInt64

    public init(clusterID: UInt64, memberID: UInt64) {
        self.clusterID = clusterID
        self.memberID = memberID
    }
}

/// etcd's answers, in grpc-gateway's JSON.
public enum EtcdResponses {
    /// The server and cluster versions raftgate claims: 3.4, whose API (`/v3`) it speaks.
    public static let serverVersion = "3.4.0"
    public static let clusterVersion = "3.4.0"

    public static var version: EtcdJSON {
        .object([("etcdserver", .string(serverVersion)), ("etcdcluster", .string(clusterVersion))])
    }

    public static func header(
        _ identity: EtcdIdentity, revision: UInt64, term: UInt64, includeZeroRevision: Bool = true
    ) -> EtcdObject {
        var header = EtcdObject()
        header.number("cluster_id", identity.clusterID)
        header.number("member_id", identity.memberID)
        // Written even when 0 (a store nobody wrote yet; etcd's starts at 1): Patroni reads
        // `header.revision` of its first range without a default.
        if revision == 0 && includeZeroRevision {
            header.raw("revision", .string("0"))
        } else {
            header.number("revision", revision)
        }
        header.number("raft_term", term)
        return header
    }

    /// The header of a response nested in a txn: etcd fills in the revision alone.
    static func nestedHeader(revision: UInt64) -> EtcdObject {
        var header = EtcdObject()
        header.number("revision", revision)
        return header
    }

    public static func keyValue(_ keyValue: TransactionOutcome.KeyValue) -> EtcdJSON {
        var object = EtcdObject()
        object.bytes("key", EtcdNamespace.etcdKey(keyValue.key) ?? Array(keyValue.key.utf8))
        object.number("create_revision", keyValue.record.createRevision)
        object.number("mod_revision", keyValue.record.modRevision)
        object.number("version", keyValue.record.version)
        object.bytes("value", keyValue.record.value)
        object.number("lease", keyValue.record.lease)
        return object.json
    }

    public static func range(
        header: EtcdObject, keyValues: [TransactionOutcome.KeyValue], count: UInt64, more: Bool
    ) -> EtcdObject {
        var object = EtcdObject()
        object.object("header", header)
        object.array("kvs", keyValues.map(keyValue))
        object.bool("more", more)
        object.number("count", count)
        return object
    }

    /// The answer to one request of a txn, or to the unary put / deleterange it stands for.
    public static func response(_ response: TransactionOutcome.Response, header: EtcdObject) -> EtcdObject {
        switch response {
        case .put(let previous):
            var object = EtcdObject()
            object.object("header", header)
            if let previous { object.raw("prev_kv", keyValue(previous)) }
            return object
        case .deleteRange(let deleted, let previous):
            var object = EtcdObject()
            object.object("header", header)
            object.number("deleted", deleted)
            object.array("prev_kvs", previous.map(keyValue))
            return object
        case .range(let keyValues, let count, let more):
            return range(header: header, keyValues: keyValues, count: count, more: more)
        }
    }

    public static func transaction(_ outcome: TransactionOutcome, header: EtcdObject) -> EtcdObject {
        var object = EtcdObject()
        object.object("header", header)
        object.bool("succeeded", outcome.succeeded)
        let nested = nestedHeader(revision: outcome.revision)
        object.array(
            "responses",
            outcome.responses.map { response in
                let name =
                    switch response {
                    case .put: "response_put"
                    case .deleteRange: "response_delete_range"
                    case .range: "response_range"
                    }
                return .object([(name, self.response(response, header: nested).json)])
            })
        return object
    }

    public struct Member: Sendable, Hashable {
        public var id: UInt64
        public var name: String
        public var peerURLs: [String]
        public var clientURLs: [String]
        public var isLearner: Bool

        public init(id: UInt64, name: String, peerURLs: [String], clientURLs: [String], isLearner: Bool) {
            self.id = id
            self.name = name
            self.peerURLs = peerURLs
            self.clientURLs = clientURLs
            self.isLearner = isLearner
        }
    }

    public static func memberList(_ members: [Member], header: EtcdObject) -> EtcdObject {
        var object = EtcdObject()
        object.object("header", header)
        object.array(
            "members",
            members.map { member in
                var fields = EtcdObject()
                fields.number("ID", member.id)
                fields.string("name", member.name)
                fields.array("peerURLs", member.peerURLs.map { .string($0) })
                fields.array("clientURLs", member.clientURLs.map { .string($0) })
                fields.bool("isLearner", member.isLearner)
                return fields.json
            })
        return object
    }

    // MARK: Leases

    public static func leaseGrant(id: Int64, ttl: Int64, header: EtcdObject) -> EtcdObject {
        var object = EtcdObject()
        object.object("header", header)
        object.number("ID", id)
        object.number("TTL", ttl)
        return object
    }

    /// One keepalive answer, wrapped as a stream message (`{"result":…}`); TTL 0 (left out) means
    /// the lease is gone, as etcd answers.
    public static func leaseKeepAlive(id: Int64, ttl: Int64, header: EtcdObject) -> EtcdJSON {
        var object = EtcdObject()
        object.object("header", header)
        object.number("ID", id)
        object.number("TTL", ttl)
        return .object([("result", object.json)])
    }

    /// TTL -1 when the lease does not exist, as etcd answers.
    public static func leaseTimeToLive(
        id: Int64, ttl: Int64, grantedTTL: Int64, keys: [[UInt8]], header: EtcdObject
    ) -> EtcdObject {
        var object = EtcdObject()
        object.object("header", header)
        object.number("ID", id)
        object.number("TTL", ttl)
        object.number("grantedTTL", grantedTTL)
        object.array("keys", keys.map { .string(Data($0).base64EncodedString()) })
        return object
    }

    public static func headerOnly(_ header: EtcdObject) -> EtcdObject {
        var object = EtcdObject()
        object.object("header", header)
        return object
    }
}
