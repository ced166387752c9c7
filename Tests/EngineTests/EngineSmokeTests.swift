import Testing

@Suite struct EngineSmokeTests {
    @Test func builds() { #expect(1 + 1 == 2) }
}
