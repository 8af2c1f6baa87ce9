import EtcdAPI
import Foundation
import HTTPTypes
import Hummingbird
import Node

/// Who may use the etcd API (`EtcdRoutes`). Patroni's keys decide which PostgreSQL node is
/// primary and what its configuration runs, so the API is never open by default.
public enum EtcdAccess: Sendable {
    /// No credentials configured: every `/v3` request is refused (`EtcdError.apiOff`).
    case off
    /// `--insecure-dev` without credentials: open to anyone, authentication "not enabled".
    case open
    /// etcd's own authentication: `/v3/auth/authenticate` with this user and password answers a
    /// token, which every other request carries in its `Authorization` header.
    case password(user: String, password: String)
}

/// etcd's simple authentication, stateless across gateways: the token for (user, password) is an
/// HMAC under a key derived from the cluster key, so every gateway of the cluster issues and
/// accepts the same token without sharing any state, nobody without the cluster key and the
/// password can make one, and changing the password (on every gateway) revokes every token
/// issued for the old one. Tokens do not expire otherwise. Compared in constant time.
struct EtcdAuthenticator: Sendable {
    let access: EtcdAccess
    /// The one valid token (nil unless `access` is `.password`).
    let token: String?

    static let purpose = "raftgate/etcd-api-auth-token"

    init(access: EtcdAccess, clusterKey: ClusterKey) {
        self.access = access
        if case .password(let user, let password) = access {
            let message = Array(user.utf8) + [0] + Array(password.utf8)
            let code = clusterKey.authenticationCode(message, for: Self.purpose)
            token = "raftgate." + Data(code).base64EncodedString()
        } else {
            token = nil
        }
    }

    /// `/v3/auth/authenticate`: the token for the right name and password.
    func authenticate(name: String, password: String) throws(EtcdError) -> String {
        switch access {
        case .off: throw .apiOff
        case .open: throw .authNotEnabled
        case .password(let user, let expected):
            // Both compared whatever the first said, so timing tells neither apart.
            let nameMatches = AdminToken.constantTimeEqual(Array(name.utf8), Array(user.utf8))
            let passwordMatches = AdminToken.constantTimeEqual(Array(password.utf8), Array(expected.utf8))
            guard nameMatches && passwordMatches, let token else { throw .authFailed }
            return token
        }
    }

    /// Every other `/v3` request: etcd's answers for a missing and for a wrong token (Patroni
    /// authenticates again on both and retries). Without `needsToken` (the member list, which
    /// etcd 3.4 answers without one and Patroni asks before it authenticates) only an API that
    /// is off refuses.
    func authorize(_ request: Request, needsToken: Bool = true) throws(EtcdError) {
        switch access {
        case .off: throw .apiOff
        case .open: return
        case .password where !needsToken: return
        case .password:
            guard let given = request.headers[.authorization], !given.isEmpty else { throw .userEmpty }
            guard let token, AdminToken.constantTimeEqual(Array(given.utf8), Array(token.utf8)) else {
                throw .invalidAuthToken
            }
        }
    }
}
