import Testing

@Suite struct DistributedSmokeTests {
    @Test func builds() { #expect(1 + 1 == 2) }
}
