import Crypto

/// What a sealed SWIM packet is for. Each kind is sealed with its own key (derived with HKDF from
/// the cluster key) and the kind byte is under the MAC too, so a packet sealed for one use is never
/// accepted as another: a recorded push-pull answer cannot be played as a datagram, say.
enum PacketKind: UInt8, CaseIterable, Sendable {
    case datagram = 1
    case pushPullRequest = 2
    case pushPullResponse = 3

    var keyPurpose: String {
        switch self {
        case .datagram: "raftgate/v2/swim-datagram"
        case .pushPullRequest: "raftgate/v2/swim-push-pull-request"
        case .pushPullResponse: "raftgate/v2/swim-push-pull-response"
        }
    }
}

/// The freshness fields every sealed packet carries, checked by `ReplayWindow`.
struct PacketStamp: Hashable, Sendable {
    /// The sender's wall clock, milliseconds since 1970.
    var sentAtMillis: UInt64
    /// Never repeated by one sender within a boot (a random start, then counted up), so a packet
    /// seen twice is a copy.
    var nonce: UInt64

    var bytes: [UInt8] {
        withUnsafeBytes(of: sentAtMillis.bigEndian) { Array($0) } + withUnsafeBytes(of: nonce.bigEndian) { Array($0) }
    }
}

/// Authenticates every SWIM datagram and push-pull frame with HMAC-SHA256 under a key derived from
/// the shared cluster key (memberlist's encryption key plays the same role), so a stray or forged
/// packet is dropped and counted instead of reaching the protocol, and stamps each one so that a
/// recorded packet cannot be played again (`ReplayWindow`). Sealed form, 50 bytes of overhead:
///
///     u8 format (2) | u8 kind | u64 sent-at ms | u64 nonce | 32-byte tag | payload     (integers big endian)
///     tag = HMAC-SHA256(K_kind, the 18 header bytes | context | payload)
///     K_kind = HKDF-SHA256(clusterKey, salt "raftgate cluster key", info kind.keyPurpose)
///
/// `context` is empty except for a push-pull response, where it is the request's stamp: an answer
/// is good for the one request it answers, so a recorded answer cannot be fed to a later request.
///
/// Not covered: confidentiality (member lists travel in the clear), and an attacker who can
/// capture a datagram and deliver it to another member before the original arrives there (each
/// member remembers the stamps it saw, not the stamps every member saw) — such a copy carries
/// nothing its original would not have, and incarnations only move forward.
struct MessageAuthenticator: Sendable {
    static let format: UInt8 = 2
    static let headerBytes = 18
    static let tagBytes = 32
    static let overheadBytes = headerBytes + tagBytes
    /// Fixed for raftgate; the same salt the Raft transport uses, with other HKDF infos.
    static let salt = Array("raftgate cluster key".utf8)

    private let keys: [PacketKind: SymmetricKey]

    init(clusterKey: [UInt8]) {
        let secret = SymmetricKey(data: clusterKey)
        var keys: [PacketKind: SymmetricKey] = [:]
        for kind in PacketKind.allCases {
            keys[kind] = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: secret, salt: Self.salt, info: Array(kind.keyPurpose.utf8), outputByteCount: 32)
        }
        self.keys = keys
    }

    func seal(_ payload: [UInt8], kind: PacketKind, stamp: PacketStamp, context: [UInt8] = []) -> [UInt8] {
        let header = [Self.format, kind.rawValue] + stamp.bytes
        let tag = HMAC<SHA256>.authenticationCode(for: header + context + payload, using: keys[kind]!)
        return header + Array(tag) + payload
    }

    /// The stamp and payload, or nil when the packet is not a `kind` packet sealed with the
    /// cluster key (the tag is compared in constant time by swift-crypto).
    func open(_ sealed: [UInt8], kind: PacketKind, context: [UInt8] = []) -> (stamp: PacketStamp, payload: [UInt8])? {
        guard sealed.count > Self.overheadBytes, sealed[0] == Self.format, sealed[1] == kind.rawValue else {
            return nil
        }
        let header = sealed[..<Self.headerBytes]
        let tag = sealed[Self.headerBytes..<Self.overheadBytes]
        let payload = Array(sealed[Self.overheadBytes...])
        guard
            HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: header + context + payload, using: keys[kind]!)
        else { return nil }
        var sentAt: UInt64 = 0
        var nonce: UInt64 = 0
        for index in 2..<10 { sentAt = sentAt << 8 | UInt64(sealed[index]) }
        for index in 10..<18 { nonce = nonce << 8 | UInt64(sealed[index]) }
        return (PacketStamp(sentAtMillis: sentAt, nonce: nonce), payload)
    }
}
