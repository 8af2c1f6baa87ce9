import Node

/// Where etcd's keys live in the store: etcd key `k` is store key `KeyValueStore.etcdPrefix + k`,
/// inside the reserved `/_sys/` prefix. The `/kv` API refuses writes there and shows the keys
/// only to the admin token, so Patroni's DCS is no more exposed than the cluster's own state;
/// etcd clients see their own keys and nothing else of the store (every range they can name is
/// translated into the namespace, and answers translated back).
public enum EtcdNamespace {
    public static let prefix = Array(KeyValueStore.etcdPrefix.utf8)
    /// The first store key above the namespace: where etcd's "every key from here on" stops.
    static let end = StoreTransaction.KeyRange.prefixEnd(prefix)!

    /// The store key for an etcd key.
    public static func storeKey(_ key: [UInt8]) -> [UInt8] { prefix + key }

    /// The store range for an etcd `key` / `range_end` pair (one key, `[0]` for every key from
    /// `key` on, or `[key, end)`), in the namespace.
    public static func storeRange(_ range: StoreTransaction.KeyRange) -> StoreTransaction.KeyRange {
        if range.end.isEmpty { return StoreTransaction.KeyRange(key: prefix + range.key) }
        if range.end == [0] { return StoreTransaction.KeyRange(key: prefix + range.key, end: end) }
        return StoreTransaction.KeyRange(key: prefix + range.key, end: prefix + range.end)
    }

    /// The etcd key for a store key in the namespace; nil for any other store key.
    public static func etcdKey(_ storeKey: String) -> [UInt8]? {
        let bytes = Array(storeKey.utf8)
        guard bytes.starts(with: prefix) else { return nil }
        return Array(bytes.dropFirst(prefix.count))
    }
}
