import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Node
import Testing

@testable import Gateway

/// Who may use the etcd API: with credentials, etcd's own token authentication; without, the API
/// is off (open only under `--insecure-dev`). Patroni's keys live under `/_sys/etcd`, which the
/// `/kv` API neither writes nor shows without the admin token.
@Suite("etcd API authentication", .serialized)
struct EtcdAuthenticationTests {
    static let password = "etcd-test-password-0001"
    static let access = EtcdAccess.password(user: "patroni", password: password)

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func post(
        _ client: any TestClientProtocol, _ path: String, _ body: String, token: String? = nil
    ) async throws -> (status: Int, body: [String: Any]) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = token }
        let response = try await client.execute(
            uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
        let object =
            (try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8))) as? [String: Any]
        return (Int(response.status.code), object ?? [:])
    }

    static func authenticate(_ client: any TestClientProtocol, password: String = password) async throws -> (
        status: Int, body: [String: Any]
    ) {
        try await post(client, "/v3/auth/authenticate", #"{"name":"patroni","password":"\#(password)"}"#)
    }

    @Test func everyRequestNeedsTheTokenFromAuthenticate() async throws {
        try await StorePrimitiveRouteTests.withGateway(etcd: Self.access) { _, client in
            let put = #"{"key":"\#(Self.base64("/service/dcs/leader"))","value":"\#(Self.base64("pg1"))"}"#
            // No token: etcd's "user name is empty" (Patroni then authenticates); nothing written.
            let anonymous = try await Self.post(client, "/v3/kv/put", put)
            #expect(anonymous.status == 400 && anonymous.body["message"] as? String == "etcdserver: user name is empty")
            // A made-up token: etcd's invalid auth token, code 16.
            let forged = try await Self.post(client, "/v3/kv/put", put, token: "raftgate.AAAA")
            #expect(forged.status == 401 && forged.body["code"] as? Int == 16)
            #expect(forged.body["message"] as? String == "etcdserver: invalid auth token")
            for path in ["/v3/kv/range", "/v3/lease/grant", "/v3/lease/revoke", "/v3/watch", "/v3/lease/keepalive"] {
                #expect(try await Self.post(client, path, "{}").status == 400, "\(path) answered without a token")
            }
            // A wrong password: etcd's authentication failed.
            let wrong = try await Self.authenticate(client, password: "not-the-password-000")
            #expect(wrong.status == 400)
            #expect(
                wrong.body["message"] as? String == "etcdserver: authentication failed, invalid user ID or password")
            // The right one: a token that works.
            let authenticated = try await Self.authenticate(client)
            let token = try #require(authenticated.body["token"] as? String)
            #expect(authenticated.status == 200)
            let read = #"{"key":"\#(Self.base64("/service/dcs/leader"))"}"#
            #expect(try await Self.post(client, "/v3/kv/range", read, token: token).body["kvs"] == nil)
            #expect(try await Self.post(client, "/v3/kv/put", put, token: token).status == 200)
            let rows = try await Self.post(client, "/v3/kv/range", read, token: token).body["kvs"] as? [[String: Any]]
            #expect(rows?.first?["key"] as? String == Self.base64("/service/dcs/leader"))
        }
    }

    /// What Patroni wrote is out of the `/kv` API's reach: not at its etcd name, not writable at
    /// its store name, listed only with the admin token.
    @Test func patronisKeysAreOutOfTheKeyValueAPIsReach() async throws {
        try await StorePrimitiveRouteTests.withGateway(etcd: Self.access) { _, client in
            let token = try #require(try await Self.authenticate(client).body["token"] as? String)
            let put = #"{"key":"\#(Self.base64("/service/dcs/leader"))","value":"\#(Self.base64("pg1"))"}"#
            #expect(try await Self.post(client, "/v3/kv/put", put, token: token).status == 200)
            let plain = try await client.execute(uri: "/kv?prefix=/service/", method: .get)
            #expect((StorePrimitiveRouteTests.object(plain)["kvs"] as? [Any])?.isEmpty == true)
            // Not even the admin token writes there through /kv.
            var admin = StorePrimitiveRouteTests.authorized
            admin[.contentType] = "application/json"
            let overwrite = try await client.execute(
                uri: "/kv", method: .post, headers: admin,
                body: ByteBuffer(string: #"{"key":"/_sys/etcd/service/dcs/leader","value":"evil"}"#))
            #expect(overwrite.status == .forbidden)
            let anonymous = try await client.execute(uri: "/kv?prefix=/_sys/etcd/", method: .get)
            #expect(anonymous.status == .unauthorized)
            let listed = try await client.execute(
                uri: "/kv?prefix=/_sys/etcd/", method: .get, headers: StorePrimitiveRouteTests.authorized)
            let keys = (StorePrimitiveRouteTests.object(listed)["kvs"] as? [[String: Any]])?.map {
                $0["key"] as? String
            }
            #expect(keys == ["/_sys/etcd/service/dcs/leader"])
            let value = (StorePrimitiveRouteTests.object(listed)["kvs"] as? [[String: Any]])?.first?["value"] as? String
            #expect(value == "pg1")
        }
    }

    /// The token is the same on every gateway of the cluster (a request may land on any), and
    /// changes with the password or the cluster key.
    @Test func tokensAreTheClustersAndThePasswords() throws {
        let key = try ClusterKey("etcd-auth-tests-cluster-key")
        let one = EtcdAuthenticator(access: Self.access, clusterKey: key)
        let other = EtcdAuthenticator(access: Self.access, clusterKey: try ClusterKey("etcd-auth-tests-cluster-key"))
        #expect(one.token != nil && one.token == other.token)
        let newPassword = EtcdAuthenticator(
            access: .password(user: "patroni", password: "another-password-00001"), clusterKey: key)
        let otherCluster = EtcdAuthenticator(
            access: Self.access, clusterKey: try ClusterKey("another-cluster-key-0001"))
        #expect(newPassword.token != one.token && otherCluster.token != one.token)
        #expect(one.token?.contains(Self.password) == false)
    }

    /// Without credentials the API is off; `--insecure-dev` opens it (authentication "not enabled").
    @Test func withoutCredentialsTheAPIIsOff() async throws {
        try await StorePrimitiveRouteTests.withGateway(etcd: .off) { _, client in
            let range = try await Self.post(client, "/v3/kv/range", #"{"key":"YQ=="}"#)
            #expect(range.status == 403 && range.body["code"] as? Int == 7)
            #expect(try await Self.authenticate(client).status == 403)
            #expect(try await Self.post(client, "/v3/watch", #"{"create_request":{"key":"YQ=="}}"#).status == 403)
        }
        try await StorePrimitiveRouteTests.withGateway(etcd: .open) { _, client in
            let authenticate = try await Self.authenticate(client)
            #expect(authenticate.body["message"] as? String == "etcdserver: authentication is not enabled")
            #expect(try await Self.post(client, "/v3/kv/range", #"{"key":"YQ=="}"#).status == 200)
        }
    }
}
