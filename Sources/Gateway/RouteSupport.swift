import Foundation
import HTTPTypes
import Hummingbird
import Node

/// What every route group shares: turning thrown errors into the JSON error shape, reading a
/// bounded body, and answering for a write's outcome.
enum RouteSupport {
    static func respond(_ work: () async throws -> Response) async -> Response {
        do {
            return try await work()
        } catch let error as GatewayError {
            return error.response
        } catch {
            return GatewayError(status: .internalServerError, code: "internal", message: "\(error)").response
        }
    }

    static func body(_ request: Request, limit: Int) async throws -> [UInt8] {
        var request = request
        do {
            let buffer = try await request.collectBody(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch {
            throw GatewayError(status: .contentTooLarge, code: "too_large", message: "the body exceeds \(limit) bytes")
        }
    }

    /// `If-Match: <modRevision>` (compare-and-set) or `If-None-Match: *` (create only).
    static func condition(_ request: Request) throws -> StoreCommand.Condition {
        if let ifMatch = request.headers[.ifMatch] {
            guard let revision = UInt64(ifMatch.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))) else {
                throw GatewayError.badRequest("If-Match must be a modRevision number")
            }
            return .modRevision(revision)
        }
        if let ifNoneMatch = request.headers[.ifNoneMatch] {
            guard ifNoneMatch.trimmingCharacters(in: .whitespaces) == "*" else {
                throw GatewayError.badRequest("If-None-Match supports only *")
            }
            return .absent
        }
        return .none
    }

    static func idempotencyKey(_ request: Request) -> String? {
        request.headers[HTTPField.Name("Idempotency-Key")!]
    }

    /// The error to answer for a write that did not apply as asked.
    static func failure(_ outcome: WriteOutcome) -> GatewayError {
        switch outcome {
        case .applied(.conditionFailed(let current), _):
            GatewayError(
                status: .preconditionFailed, code: "condition_failed", message: "the key's modRevision is \(current)")
        case .applied(.reservedKey, _):
            GatewayError(status: .forbidden, code: "reserved_key", message: "reserved key")
        case .applied(.leaseNotFound(let id), _):
            leaseNotFound(id)
        case .applied(.leaseExists(let id), _):
            GatewayError(status: .conflict, code: "lease_exists", message: "lease \(id) already exists")
        case .applied(.idempotencyKeyReused, _):
            GatewayError(
                status: .unprocessableContent, code: "idempotency_key_reused",
                message: "this Idempotency-Key was used with a different request; use a new key for a new request")
        case .applied(.applied, _), .applied(.leaseGranted, _), .applied(.transaction, _):
            GatewayError(status: .internalServerError, code: "internal", message: "unexpected success")
        case .notLeader(let leader):
            noLeader(leader)
        case .notApplied(let reason):
            GatewayError(
                status: .serviceUnavailable, code: "not_applied", message: "not applied, safe to retry: \(reason)",
                headers: [.retryAfter: "1"])
        case .refused(let refusal):
            refused(refusal)
        case .unknown(let reason):
            GatewayError(
                status: .gatewayTimeout, code: "outcome_unknown",
                message: "the write was proposed but its outcome is unknown (it may still apply): \(reason)")
        }
    }

    /// 507 `quota_exceeded` for the store quota (reads and deletes still work); 503 with
    /// `Retry-After` for the overload bounds, which pass when the pressure stops.
    static func refused(_ refusal: WriteRefusal) -> GatewayError {
        switch refusal {
        case .quotaExceeded(let used, let quota):
            GatewayError(
                status: HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), code: "quota_exceeded",
                message:
                    "the store holds \(used) of its \(quota) byte quota: puts are refused until keys are deleted (reads and deletes work)"
            )
        case .uncommittedBytes(let pending, let limit):
            GatewayError(
                status: .serviceUnavailable, code: "overloaded",
                message: "the leader carries \(pending) uncommitted bytes (limit \(limit)); nothing was written, retry",
                headers: [.retryAfter: "1"])
        case .pendingWrites(let pending, let limit):
            GatewayError(
                status: .serviceUnavailable, code: "overloaded",
                message: "the leader waits on \(pending) writes (limit \(limit)); nothing was written, retry",
                headers: [.retryAfter: "1"])
        }
    }

    static func noLeader(_ leader: UInt64?) -> GatewayError {
        var headers: HTTPFields = [.retryAfter: "1"]
        if let leader { headers[HTTPField.Name("X-Raft-Leader")!] = "\(leader)" }
        return GatewayError(
            status: .serviceUnavailable, code: "no_leader", message: "no leader can take the write now",
            headers: headers)
    }

    static func leaseNotFound(_ id: UInt64) -> GatewayError {
        GatewayError(
            status: .notFound, code: "lease_not_found", message: "no lease \(id) (never granted, revoked or expired)")
    }

    static func unavailable(_ message: String = "the read could not be confirmed now") -> GatewayError {
        GatewayError(status: .serviceUnavailable, code: "unavailable", message: message, headers: [.retryAfter: "1"])
    }

    /// Encodes `value` as the answer, keys sorted.
    static func encoded(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws
        -> Response
    {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(
            status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
