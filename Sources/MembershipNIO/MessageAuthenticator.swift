import Crypto

/// Authenticates every SWIM datagram and push-pull frame with HMAC-SHA256 over a shared cluster
/// key (memberlist's encryption key plays the same role), so a stray or forged packet is dropped
/// and counted instead of reaching the protocol. Sealed form: 32-byte tag, then the payload.
///
/// Not covered: replay of a captured packet within its usefulness (a replayed ack or alive
/// record is harmless to membership: incarnations only move forward), and confidentiality.
struct MessageAuthenticator: Sendable {
    static let tagBytes = 32
    private let key: SymmetricKey

    init(clusterKey: [UInt8]) {
        key = SymmetricKey(data: clusterKey)
    }

    func seal(_ payload: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: payload, using: key)) + payload
    }

    /// The payload, or nil when the tag does not match (compared in constant time by swift-crypto).
    func open(_ sealed: [UInt8]) -> [UInt8]? {
        guard sealed.count > Self.tagBytes else { return nil }
        let payload = Array(sealed[Self.tagBytes...])
        guard
            HMAC<SHA256>.isValidAuthenticationCode(
                sealed[..<Self.tagBytes], authenticating: payload, using: key)
        else { return nil }
        return payload
    }
}
