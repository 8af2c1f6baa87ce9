/// An etcd error as its grpc-gateway answers it: HTTP status from the gRPC code, and the body
/// `{"error":"…","message":"…","code":N}` (Patroni matches on the message, then the code). Streams
/// carry `{"error":{"grpc_code":N,"http_code":S,"message":"…","http_status":"…"}}` instead.
public struct EtcdError: Error, Sendable, Hashable {
    /// google.golang.org/grpc/codes, with their numbers.
    public enum Code: Int, Sendable, Hashable {
        case canceled = 1
        case unknown = 2
        case invalidArgument = 3
        case deadlineExceeded = 4
        case notFound = 5
        case alreadyExists = 6
        case permissionDenied = 7
        case resourceExhausted = 8
        case failedPrecondition = 9
        case aborted = 10
        case outOfRange = 11
        case unimplemented = 12
        case `internal` = 13
        case unavailable = 14
        case dataLoss = 15
        case unauthenticated = 16

        /// grpc-gateway's `HTTPStatusFromCode`.
        public var httpStatus: Int {
            switch self {
            case .canceled: 408
            case .unknown, .internal, .dataLoss: 500
            case .invalidArgument, .outOfRange: 400
            case .deadlineExceeded: 504
            case .notFound: 404
            case .alreadyExists, .aborted: 409
            case .permissionDenied: 403
            case .resourceExhausted: 429
            case .failedPrecondition: 412
            case .unimplemented: 501
            case .unavailable: 503
            case .unauthenticated: 401
            }
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var httpStatus: Int { code.httpStatus }

    /// The body of a unary answer.
    public var json: EtcdJSON {
        .object([("error", .string(message)), ("message", .string(message)), ("code", .integer(Int64(code.rawValue)))])
    }

    /// The error object of a streaming answer (a watch or a keepalive), as grpc-gateway writes it.
    public var streamJSON: EtcdJSON {
        .object([
            (
                "error",
                .object([
                    ("grpc_code", .integer(Int64(code.rawValue))), ("http_code", .integer(Int64(httpStatus))),
                    ("message", .string(message)), ("http_status", .string(Self.reason(httpStatus))),
                ])
            )
        ])
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 412: "Precondition Failed"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        default: "Internal Server Error"
        }
    }

    // etcd's own errors (api/v3rpc/rpctypes), word for word: clients match on the text.
    public static let emptyKey = EtcdError(.invalidArgument, "etcdserver: key is not provided")
    public static let duplicateKey = EtcdError(.invalidArgument, "etcdserver: duplicate key given in txn request")
    public static let tooManyOperations = EtcdError(.invalidArgument, "etcdserver: too many operations in txn request")
    public static let requestTooLarge = EtcdError(.invalidArgument, "etcdserver: request is too large")
    public static let leaseNotFound = EtcdError(.notFound, "etcdserver: requested lease not found")
    public static let leaseExists = EtcdError(.failedPrecondition, "etcdserver: lease already exists")
    public static let leaseTTLTooLarge = EtcdError(.outOfRange, "etcdserver: too large lease TTL")
    public static let noLeader = EtcdError(.unavailable, "etcdserver: no leader")
    public static let timeout = EtcdError(.unavailable, "etcdserver: request timed out")
    public static let permissionDenied = EtcdError(.permissionDenied, "etcdserver: permission denied")
    public static let authNotEnabled = EtcdError(.failedPrecondition, "etcdserver: authentication is not enabled")
    public static let noSpace = EtcdError(.resourceExhausted, "etcdserver: mvcc: database space exceeded")
    public static let tooManyRequests = EtcdError(.resourceExhausted, "etcdserver: too many requests")

    public static let authFailed = EtcdError(
        .invalidArgument, "etcdserver: authentication failed, invalid user ID or password")
    /// A request without a token while authentication is on (Patroni then authenticates).
    public static let userEmpty = EtcdError(.invalidArgument, "etcdserver: user name is empty")
    public static let invalidAuthToken = EtcdError(.unauthenticated, "etcdserver: invalid auth token")
    /// No credentials are configured: the etcd API is off (`--insecure-dev` aside).
    public static let apiOff = EtcdError(
        .permissionDenied,
        "raftgate: the etcd API is off: no etcd password is configured (--etcd-password, RAFTGATE_ETCD_PASSWORD)")

    public static func keyTooLarge(_ bytes: Int, _ limit: Int) -> EtcdError {
        EtcdError(.invalidArgument, "raftgate: the key is \(bytes) bytes, longer than \(limit)")
    }

    /// Outside the subset raftgate speaks: refused, never answered wrongly.
    public static func unimplemented(_ what: String) -> EtcdError {
        EtcdError(.unimplemented, "raftgate: \(what) is not implemented by raftgate's etcd API")
    }

    public static func invalid(_ message: String) -> EtcdError { EtcdError(.invalidArgument, message) }
}
