@testable import Node

extension ClusterKey {
    /// The key the in-process clusters of these tests share.
    static let test = try! ClusterKey("node-tests-cluster-key-0123456789")
    /// A key no member holds.
    static let other = try! ClusterKey("a-different-cluster-key-987654")
}
