import Crypto

/// The secret every member of a cluster shares (`clusterKey`): whoever holds it is a member.
///
/// It is never used as a key itself. Each use derives its own with HKDF-SHA256, so a MAC made for
/// one purpose (a SWIM datagram, say) can never be presented as one made for another (a Raft peer
/// handshake), and a future purpose cannot weaken an existing one.
public struct ClusterKey: Sendable {
    /// Shorter secrets are refused: the key is usually a passphrase, and below this it is guessable.
    public static let minimumBytes = 16
    /// Fixed for raftgate: HKDF's salt separates raftgate's derived keys from any other use of the
    /// same secret.
    static let salt = Array("raftgate cluster key".utf8)

    private let secret: SymmetricKey

    public init(_ bytes: [UInt8]) throws(ClusterKeyError) {
        guard bytes.count >= Self.minimumBytes else { throw .tooShort(bytes.count) }
        secret = SymmetricKey(data: bytes)
    }

    public init(_ text: String) throws(ClusterKeyError) {
        try self.init(Array(text.utf8))
    }

    /// A 256-bit key for `purpose` alone (HKDF info), e.g. "raftgate/v2/raft-peer-handshake".
    func derivedKey(for purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: secret, salt: Self.salt, info: Array(purpose.utf8), outputByteCount: 32)
    }
}

public enum ClusterKeyError: Error, Hashable, CustomStringConvertible {
    case tooShort(Int)

    public var description: String {
        switch self {
        case .tooShort(let bytes): "clusterKey must be at least \(ClusterKey.minimumBytes) bytes, got \(bytes)"
        }
    }
}

extension ClusterKey {
    /// A public 63-bit number for `purpose`, the same on every member (e.g. the etcd API's
    /// `cluster_id`). Derived like every other use, so it reveals nothing about the secret.
    public func identifier(for purpose: String) -> UInt64 {
        let bytes = derivedKey(for: purpose).withUnsafeBytes { Array($0.prefix(8)) }
        return bytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << UInt64($1.offset * 8) }
            & (UInt64.max >> 1)
    }
}

extension ClusterKey {
    /// HMAC-SHA256 of `message` under the key derived for `purpose`: a value only holders of the
    /// cluster key can make (the etcd API's auth tokens, the same on every gateway).
    public func authenticationCode(_ message: [UInt8], for purpose: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: derivedKey(for: purpose)))
    }
}
