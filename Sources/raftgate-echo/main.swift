import ArgumentParser
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The sample worker behind `/w/echo`: `GET /health` answers 200, every other request is echoed
/// back as JSON with this worker's id. `?delay_ms=N` answers after N ms and `?status=N` with that
/// status (to try the proxy's timeouts and ejection). With `--register`, it registers itself over
/// HTTP with a lease and keeps the lease alive; without, something else registers it (`raftgate agent`).
@main
struct Echo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raftgate-echo", abstract: "A sample worker: answers /health and echoes requests with its id.")

    @Option(help: "This worker's id, shown in every answer.") var id: String
    @Option(help: "Listen address, host:port.") var listen: String = "127.0.0.1:9000"
    @Option(help: "Register over HTTP at this gateway (http://host:port); default: do not register.")
    var register: String?
    @Option(help: "Service to register as.") var service: String = "echo"
    @Option(help: "Lease TTL of the registration, ms.") var ttlMs: Int = 5000
    @Option(help: "Admin token for the registration (RAFTGATE_ADMIN_TOKEN).") var adminToken: String?

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen must be host:port")
        }
        let host = String(listen[..<colon])
        let logger = Logger(label: "raftgate-echo")
        let router = Router()
        let id = self.id
        router.get("health") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\",\"worker\":\"\(id)\"}")))
        }
        router.on("**", method: .get) { request, _ in try await Self.echo(request, id: id) }
        for method in [HTTPRequest.Method.post, .put, .delete, .patch, .head, .options] {
            router.on("**", method: method) { request, _ in try await Self.echo(request, id: id) }
            router.on("/", method: method) { request, _ in try await Self.echo(request, id: id) }
        }
        router.on("/", method: .get) { request, _ in try await Self.echo(request, id: id) }
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "raftgate-echo"),
            logger: logger)
        guard let register else {
            try await app.runService()
            return
        }
        let token = adminToken ?? ProcessInfo.processInfo.environment["RAFTGATE_ADMIN_TOKEN"]
        let registrar = Registrar(
            gateway: register, service: service, id: id, address: listen, ttlMilliseconds: ttlMs, token: token,
            logger: logger)
        let registration = Task { await registrar.run() }
        // SIGTERM: the server finishes what is in flight; then the registration goes at once rather
        // than when its lease runs out.
        try await app.runService()
        registration.cancel()
        await registrar.deregister()
    }

    static func echo(_ request: Request, id: String) async throws -> Response {
        var request = request
        let query = request.uri.queryParameters
        if let delay = query.get("delay_ms", as: Int.self), delay > 0 {
            try await Task.sleep(for: .milliseconds(min(delay, 60_000)))
        }
        let body = try await request.collectBody(upTo: 64 << 20)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let echoed: [String: Any] = [
            "worker": id, "method": request.method.rawValue, "path": request.uri.path,
            "query": request.uri.query ?? "", "headers": headers, "body_bytes": body.readableBytes,
            "body": body.readableBytes <= 4096 ? String(buffer: body) : "",
        ]
        let data = try JSONSerialization.data(withJSONObject: echoed, options: [.sortedKeys])
        let status = query.get("status", as: Int.self).map { HTTPResponse.Status(code: $0) } ?? .ok
        return Response(
            status: status, headers: [.contentType: "application/json", HTTPField.Name("X-Echo-Worker")!: id],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Registers the worker over HTTP and keeps its lease alive (a third of the TTL apart); registers
/// again when the lease is gone (it lapsed while the gateways were unreachable).
struct Registrar: Sendable {
    let gateway: String
    let service: String
    let id: String
    let address: String
    let ttlMilliseconds: Int
    let token: String?
    let logger: Logger

    func run() async {
        var lease: UInt64?
        while !Task.isCancelled {
            if let current = lease {
                if await send("POST", "/lease/\(current)/keepalive", body: nil) != 200 { lease = nil }
            }
            if lease == nil {
                lease = await registerOnce()
            }
            try? await Task.sleep(for: .milliseconds(lease == nil ? 500 : max(100, ttlMilliseconds / 3)))
        }
    }

    private func registerOnce() async -> UInt64? {
        let body = "{\"address\":\"\(address)\",\"ttl_ms\":\(ttlMilliseconds)}"
        let request = makeRequest("PUT", "/workers/\(service)/\(id)", body: body)
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5)),
            let bytes = try? await response.body.collect(upTo: 1 << 20)
        else { return nil }
        guard response.status == .ok,
            let object = try? JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any],
            let lease = (object["lease"] as? NSNumber)?.uint64Value
        else {
            logger.warning("registration refused", metadata: ["status": "\(response.status.code)"])
            return nil
        }
        logger.info("registered", metadata: ["service": "\(service)", "id": "\(id)", "lease": "\(lease)"])
        return lease
    }

    func deregister() async {
        _ = await send("DELETE", "/workers/\(service)/\(id)", body: nil)
    }

    private func makeRequest(_ method: String, _ path: String, body: String?) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: gateway + path)
        request.method = .init(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        return request
    }

    private func send(_ method: String, _ path: String, body: String?) async -> UInt {
        guard
            let response = try? await HTTPClient.shared.execute(
                makeRequest(method, path, body: body), timeout: .seconds(5))
        else { return 0 }
        _ = try? await response.body.collect(upTo: 1 << 20)
        return response.status.code
    }
}
