import Hummingbird
import Testing

@testable import Gateway

@Suite("the /w tenant gate's service name")
struct ProxyTenantGateTests {
    @Test func theServiceIsTheFirstSegmentAfterW() {
        #expect(ProxyTenantGate<BasicRequestContext>.service(ofPath: "/w/echo/hello") == "echo")
        #expect(ProxyTenantGate<BasicRequestContext>.service(ofPath: "/w/echo") == "echo")
        #expect(ProxyTenantGate<BasicRequestContext>.service(ofPath: "/w/echo/a/b?c") == "echo")
    }

    @Test func pathsNamingNoServiceGiveNone() {
        for path in ["/w", "/w/", "//w/echo", "/kv/w/echo", "/", ""] {
            #expect(ProxyTenantGate<BasicRequestContext>.service(ofPath: path) == nil, "\(path)")
        }
    }
}
