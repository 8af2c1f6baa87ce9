import Crypto
import Raft

/// The mutual challenge–response that opens every Raft peer connection, keyed by the cluster
/// secret: the listener admits only a dialer that holds the key, the dialer sends nothing but its
/// hello until the listener has proved it holds the key too, and the dialer's node id is fixed for
/// the life of the connection (`PeerFrameInboundHandler` refuses any frame that claims another).
///
/// Three messages, framed like peer frames (u32 little-endian length of what follows, then the
/// protocol version), so that a node of the previous protocol fails loudly either way: a version 1
/// dialer's first frame is refused here as `unsupportedVersion(1)`, and a version 1 listener
/// refuses our hello as an unsupported frame version and hangs up.
///
///     dialer → listener   hello      len 50 | 2 | 0xF1 | dialer id u64 | target id u64 | dialer nonce (32)
///     listener → dialer   challenge  len 66 | 2 | 0xF2 | listener nonce (32) | listener proof (32)
///     dialer → listener   proof      len 34 | 2 | 0xF3 | dialer proof (32)
///
///     proof(label) = HMAC-SHA256(K, label | 0x00 | listener nonce | dialer nonce | dialer id | target id)
///     K = HKDF-SHA256(clusterKey, salt "raftgate cluster key", info "raftgate/v2/raft-peer-handshake")
///
/// with ids as u64 little endian and the labels `listenerLabel` and `dialerLabel`. Both nonces are
/// fresh random 256-bit values per connection, so no proof is good for another connection; the
/// labels differ, so the listener's proof (which it gives before the dialer has proved anything)
/// can never serve as a dialer's; the target id is inside the transcript and the listener checks
/// it is its own, so a proof made for one node opens no other.
///
/// Threat model: this keeps out anyone who can reach the port without the key — a stranger cannot
/// send Raft a message, a forwarded write or a snapshot, nor pass as another member. It does not
/// protect the bytes after the handshake: frames carry no MAC (so the frame path keeps its
/// throughput), and an on-path attacker who can inject into or hijack an established TCP stream
/// can still forge frames on it; nothing is encrypted either. Mutual TLS would answer that; it is
/// out of scope here.
enum PeerHandshake {
    static let version = PeerFrame.version
    static let helloType: UInt8 = 0xF1
    static let challengeType: UInt8 = 0xF2
    static let proofType: UInt8 = 0xF3
    static let nonceBytes = 32
    static let proofBytes = 32
    static let helloBodyBytes = 16 + nonceBytes
    static let challengeBodyBytes = nonceBytes + proofBytes
    static let proofBodyBytes = proofBytes
    static let keyPurpose = "raftgate/v2/raft-peer-handshake"
    static let listenerLabel = "raftgate peer handshake v2: listener proof"
    static let dialerLabel = "raftgate peer handshake v2: dialer proof"

    /// 256 bits from the system's cryptographic generator (BoringSSL's RAND_bytes).
    static func freshNonce() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    /// What both proofs cover.
    struct Transcript: Hashable {
        var listenerNonce: [UInt8]
        var dialerNonce: [UInt8]
        var dialer: NodeID
        var target: NodeID
    }

    /// One handshake message: the frame header, then `body`.
    static func message(type: UInt8, body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(6 + body.count)
        bytes.appendLittleEndian(UInt32(2 + body.count))
        bytes.append(version)
        bytes.append(type)
        bytes += body
        return bytes
    }

    /// Takes the next message of `type` off the front of `buffer` and returns its body, or nil
    /// while it is incomplete. Anything else — another version, a length other than the one this
    /// message has, another type — is refused as soon as the bytes that show it have arrived, so
    /// a stranger cannot make the listener wait for (or buffer) a body it claims to be sending.
    static func take(_ type: UInt8, bodyBytes: Int, from buffer: inout [UInt8]) throws(PeerHandshakeError) -> [UInt8]? {
        guard buffer.count >= 5 else { return nil }
        guard buffer[4] == version else { throw .unsupportedVersion(buffer[4]) }
        var length = 0
        for shift in 0..<4 { length |= Int(buffer[shift]) << (shift * 8) }
        guard length == 2 + bodyBytes else { throw .malformed("handshake message of \(length) bytes") }
        guard buffer.count >= 4 + length else { return nil }
        guard buffer[5] == type else { throw .malformed("handshake message type \(buffer[5])") }
        let body = Array(buffer[6..<(4 + length)])
        buffer.removeFirst(4 + length)
        return body
    }
}

/// The key both sides prove they hold, derived from the cluster key for this purpose alone.
struct PeerHandshakeKey: Sendable {
    private let key: SymmetricKey

    init(_ clusterKey: ClusterKey) {
        key = clusterKey.derivedKey(for: PeerHandshake.keyPurpose)
    }

    func proof(_ label: String, _ transcript: PeerHandshake.Transcript) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Self.bytes(label, transcript), using: key))
    }

    /// Compared in constant time (swift-crypto), so timing tells a stranger nothing about the proof.
    func isValid(_ proof: [UInt8], _ label: String, _ transcript: PeerHandshake.Transcript) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: Self.bytes(label, transcript), using: key)
    }

    private static func bytes(_ label: String, _ transcript: PeerHandshake.Transcript) -> [UInt8] {
        var bytes = Array(label.utf8)
        bytes.append(0)
        bytes += transcript.listenerNonce
        bytes += transcript.dialerNonce
        bytes.appendLittleEndian(transcript.dialer)
        bytes.appendLittleEndian(transcript.target)
        return bytes
    }
}

public enum PeerHandshakeError: Error, Hashable, CustomStringConvertible {
    /// The other side speaks another peer protocol version (1: a raftgate from before handshakes).
    case unsupportedVersion(UInt8)
    case malformed(String)
    /// The dialer meant to reach another node than this one.
    case wrongTarget(NodeID)
    /// A dialer id that cannot be a peer: 0, or this node's own.
    case invalidDialer(NodeID)
    /// The proof does not match: the other side holds another cluster key (or is not a raftgate).
    case badProof
    case timedOut
    /// The other side hung up before the handshake finished.
    case closed

    public var description: String {
        switch self {
        case .unsupportedVersion(let version):
            "peer speaks peer protocol version \(version), this node \(PeerHandshake.version): run one version in the cluster"
        case .malformed(let what): "malformed handshake: \(what)"
        case .wrongTarget(let target): "the dialer meant to reach node \(target)"
        case .invalidDialer(let dialer): "invalid dialer id \(dialer)"
        case .badProof: "handshake proof does not match: a different clusterKey"
        case .timedOut: "handshake not completed in time"
        case .closed:
            "closed during the handshake: a different clusterKey, or a node speaking another peer protocol version"
        }
    }
}
